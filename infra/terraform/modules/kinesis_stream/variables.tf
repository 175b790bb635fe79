variable "name" {
  description = "Name of the stream."
  type        = string
}

variable "stream_mode" {
  description = "PROVISIONED or ON_DEMAND."
  type        = string

  validation {
    condition     = contains(["PROVISIONED", "ON_DEMAND"], var.stream_mode)
    error_message = "stream_mode must be PROVISIONED or ON_DEMAND."
  }
}

variable "shard_count" {
  description = "Number of shards in PROVISIONED mode (ignored in ON_DEMAND mode)."
  type        = number
}

variable "retention_period_hours" {
  description = "Retention period in hours."
  type        = number
}

variable "kms_key_arn" {
  description = "KMS key for server-side encryption of the stream."
  type        = string
}

variable "shard_level_metrics" {
  description = "Enhanced shard-level CloudWatch metrics to enable."
  type        = list(string)
  default     = ["IncomingBytes", "IncomingRecords", "OutgoingRecords", "IteratorAgeMilliseconds", "WriteProvisionedThroughputExceeded", "ReadProvisionedThroughputExceeded"]
}
