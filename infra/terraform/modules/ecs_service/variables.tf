variable "name" {
  description = "Name of the service, its task definition family, roles and log group."
  type        = string
}

variable "container_name" {
  description = "Name of the (single) container of the task."
  type        = string
}

variable "cluster_arn" {
  description = "ECS cluster running the service."
  type        = string
}

variable "image" {
  description = "Container image (ECR repository URL and tag)."
  type        = string
}

variable "ecr_repository_arn" {
  description = "ECR repository the image is pulled from (the execution role may pull from it only)."
  type        = string
}

variable "cpu" {
  description = "CPU units of the task."
  type        = number
}

variable "memory" {
  description = "Memory of the task in MiB."
  type        = number
}

variable "command" {
  description = "Command of the container (null: the image's CMD)."
  type        = list(string)
  default     = null
}

variable "environment" {
  description = "Plain environment variables of the container."
  type        = map(string)
  default     = {}
}

variable "secrets" {
  description = "Environment variables filled from Secrets Manager at task start: name -> secret ARN (optionally with :json-key:: suffix)."
  type        = map(string)
  default     = {}
}

variable "secret_arns" {
  description = "Secrets Manager secrets (whole ARNs) that the execution role may read to fill var.secrets."
  type        = list(string)
  default     = []
}

variable "container_port" {
  description = "Port the container listens on (null: none)."
  type        = number
  default     = null
}

variable "desired_count" {
  description = "Number of tasks."
  type        = number
  default     = 1
}

variable "subnet_ids" {
  description = "Private subnets of the tasks."
  type        = list(string)
}

variable "security_group_ids" {
  description = "Security groups of the tasks."
  type        = list(string)
}

variable "load_balanced" {
  description = "Register the tasks in target_group_arn."
  type        = bool
  default     = false
}

variable "target_group_arn" {
  description = "Target group of the load balancer (used when load_balanced)."
  type        = string
  default     = null
}

variable "service_discovery_namespace_id" {
  description = "Cloud Map private DNS namespace in which the service registers as <discovery_name> (used when discovery_name is set)."
  type        = string
  default     = null
}

variable "discovery_name" {
  description = "DNS name of the service in the private namespace (null: not registered)."
  type        = string
  default     = null
}

variable "attach_task_policy" {
  description = "Attach task_policy_json to the task role."
  type        = bool
  default     = false
}

variable "task_policy_json" {
  description = "IAM policy document with the permissions of the application in the container (used when attach_task_policy)."
  type        = string
  default     = null
}

variable "writable_paths" {
  description = "Paths that are task-local writable volumes; the root file system is read-only."
  type        = list(string)
  default     = []
}

variable "health_check_command" {
  description = "Container health check command in ECS form, e.g. [\"CMD-SHELL\", \"curl -f http://localhost/health\"] (null: none)."
  type        = list(string)
  default     = null
}

variable "health_check_grace_period_seconds" {
  description = "Grace period before load balancer health checks count (load balanced services only)."
  type        = number
  default     = 120
}

variable "kms_key_arn" {
  description = "KMS key encrypting the log group and the secrets."
  type        = string
}

variable "log_retention_days" {
  description = "Retention of the service's log group in days."
  type        = number
}
