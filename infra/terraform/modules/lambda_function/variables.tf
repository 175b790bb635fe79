variable "function_name" {
  description = "Name of the Lambda function."
  type        = string
}

variable "description" {
  description = "Description of the function."
  type        = string
}

variable "image_uri" {
  description = "ECR image URI (repository:tag) of the function."
  type        = string
}

variable "memory_size" {
  description = "Memory in MB."
  type        = number
}

variable "timeout" {
  description = "Timeout in seconds."
  type        = number
}

variable "reserved_concurrent_executions" {
  description = "Reserved concurrent executions."
  type        = number
}

variable "environment" {
  description = "Environment variables of the function."
  type        = map(string)
  default     = {}
}

variable "policy_json" {
  description = "IAM policy document with the function's permissions on the pipeline's resources (logs, VPC networking and tracing are added by the module)."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets the function runs in."
  type        = list(string)
}

variable "security_group_ids" {
  description = "Security groups of the function's network interfaces."
  type        = list(string)
}

variable "kms_key_arn" {
  description = "KMS key encrypting the environment variables and the log group."
  type        = string
}

variable "log_retention_days" {
  description = "Retention of the function's log group in days."
  type        = number
}
