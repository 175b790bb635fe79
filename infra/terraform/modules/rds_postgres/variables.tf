variable "identifier" {
  description = "Identifier of the RDS instance."
  type        = string
}

variable "engine_version" {
  description = "PostgreSQL engine version."
  type        = string
}

variable "parameter_group_family" {
  description = "Parameter group family matching engine_version, e.g. postgres15."
  type        = string
}

variable "instance_class" {
  description = "Instance class."
  type        = string
}

variable "allocated_storage" {
  description = "Initial storage in GB."
  type        = number
}

variable "max_allocated_storage" {
  description = "Upper bound of storage autoscaling in GB."
  type        = number
}

variable "db_name" {
  description = "Name of the database created with the instance."
  type        = string
}

variable "master_username" {
  description = "Master user name; the password is generated and kept by RDS in Secrets Manager."
  type        = string
}

variable "multi_az" {
  description = "Keep a standby in a second availability zone."
  type        = bool
}

variable "backup_retention_period" {
  description = "Days of automated backups."
  type        = number
}

variable "deletion_protection" {
  description = "Protect the instance from deletion."
  type        = bool
}

variable "subnet_ids" {
  description = "Private subnets of the DB subnet group."
  type        = list(string)
}

variable "security_group_ids" {
  description = "Security groups of the instance."
  type        = list(string)
}

variable "kms_key_arn" {
  description = "KMS key for storage, Performance Insights, the master user secret and the log exports."
  type        = string
}

variable "log_retention_days" {
  description = "Retention in days of the exported PostgreSQL logs."
  type        = number
}
