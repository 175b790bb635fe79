variable "name" {
  description = "Name of the bucket."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key for default server-side encryption (SSE-KMS with an S3 bucket key)."
  type        = string
}

variable "access_log_bucket" {
  description = "Bucket receiving the server access logs of this bucket."
  type        = string
}

variable "access_log_prefix" {
  description = "Key prefix of this bucket's server access logs in access_log_bucket."
  type        = string
}

variable "expiring_prefixes" {
  description = "Key prefixes whose current objects expire after the given number of days, e.g. { \"data/processed/\" = 30 }."
  type        = map(number)
  default     = {}
}

variable "noncurrent_version_expiration_days" {
  description = "Days after which non-current object versions are deleted."
  type        = number
  default     = 30
}

variable "force_destroy" {
  description = "Allow destroying the bucket while it still holds objects."
  type        = bool
  default     = false
}
