variable "name" {
  description = "Name of the queue."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key encrypting the queue (and its dead-letter queue)."
  type        = string
}

variable "visibility_timeout_seconds" {
  description = "Visibility timeout of the queue in seconds."
  type        = number
  default     = 30
}

variable "message_retention_seconds" {
  description = "How long the queue keeps a message, in seconds."
  type        = number
  default     = 345600
}

variable "dead_letter_queue" {
  description = "Dead-letter queue to create for this queue: its name, the receive count after which a message moves there, and its retention. Null: no dead-letter queue."
  type = object({
    name                      = string
    max_receive_count         = number
    message_retention_seconds = optional(number, 1209600)
  })
  default = null
}
