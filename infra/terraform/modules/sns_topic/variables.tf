variable "name" {
  description = "Name of the topic."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key encrypting the topic."
  type        = string
}

variable "email_addresses" {
  description = "E-mail addresses to subscribe (each must confirm)."
  type        = list(string)
  default     = []
}
