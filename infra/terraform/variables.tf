# ---------------------------------------------------------------------------------------------------
# General
# ---------------------------------------------------------------------------------------------------

variable "project" {
  description = "Short project name, used as a prefix for resource names that are not fixed by the application (roles, ECS services, RDS, ALB)."
  type        = string
  default     = "churn"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,11}$", var.project))
    error_message = "project must be 2-12 characters: lower-case letters, digits and hyphens, starting with a letter (load balancer and target group names are limited to 32 characters)."
  }
}

variable "environment" {
  description = "Environment name (dev, staging, prod, ...), part of resource names and tags."
  type        = string
  default     = "dev"

  validation {
    condition     = can(regex("^[a-z][a-z0-9]{1,7}$", var.environment))
    error_message = "environment must be 2-8 lower-case letters or digits, starting with a letter."
  }
}

variable "aws_region" {
  description = "AWS region of every resource of the stack."
  type        = string
  default     = "us-east-1"
}

variable "tags" {
  description = "Extra tags applied to every resource (merged with Project, Environment and ManagedBy)."
  type        = map(string)
  default     = {}
}

variable "resource_name_suffix" {
  description = "Suffix appended to the application-fixed resource names (queues, stream, topic) so that two environments can share an account and region, e.g. \"-dev\". The application reads the real names from its environment variables. Empty keeps the names of infra/event_source_mappings.json and churn_common/settings.py."
  type        = string
  default     = ""

  validation {
    condition     = can(regex("^[a-z0-9-]{0,20}$", var.resource_name_suffix))
    error_message = "resource_name_suffix may only contain lower-case letters, digits and hyphens (at most 20 characters)."
  }
}

# ---------------------------------------------------------------------------------------------------
# Network and public access
# ---------------------------------------------------------------------------------------------------

variable "vpc_cidr" {
  description = "CIDR block of the VPC. Public and private /24 subnets are carved out of it."
  type        = string
  default     = "10.40.0.0/16"

  validation {
    condition     = can(cidrnetmask(var.vpc_cidr))
    error_message = "vpc_cidr must be a valid IPv4 CIDR block."
  }
}

variable "availability_zones" {
  description = "Availability zones (names, in aws_region) to spread the subnets over; RDS needs at least 2. Listed explicitly so that the network never changes when AWS adds a zone."
  type        = list(string)

  validation {
    condition     = length(var.availability_zones) >= 2 && length(var.availability_zones) <= 4 && length(distinct(var.availability_zones)) == length(var.availability_zones)
    error_message = "availability_zones must list 2 to 4 distinct zones."
  }
}

variable "single_nat_gateway" {
  description = "Use one NAT gateway for all private subnets (cheaper) instead of one per availability zone (survives an AZ outage)."
  type        = bool
  default     = true
}

variable "allowed_cidr_blocks" {
  description = "IPv4 CIDR blocks allowed to reach the load balancer (Grafana on 443, MLflow on 5000, Prefect on 4200). Must not contain 0.0.0.0/0."
  type        = list(string)

  validation {
    condition     = length(var.allowed_cidr_blocks) > 0 && alltrue([for c in var.allowed_cidr_blocks : can(cidrnetmask(c)) && c != "0.0.0.0/0"])
    error_message = "allowed_cidr_blocks must be a non-empty list of valid IPv4 CIDR blocks, without 0.0.0.0/0."
  }
}

variable "certificate_arn" {
  description = "ARN of an ACM certificate (in aws_region) for public_hostname, used by the HTTPS listeners of the load balancer."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:acm:", var.certificate_arn))
    error_message = "certificate_arn must be an ACM certificate ARN."
  }
}

variable "public_hostname" {
  description = "DNS name under which the load balancer is reached (covered by certificate_arn), e.g. churn.example.com. Used for Grafana's root URL, MLflow's allowed hosts and the Prefect UI's API URL."
  type        = string
}

variable "route53_zone_id" {
  description = "Route 53 hosted zone in which to create an alias record public_hostname -> load balancer. Null: manage the DNS record elsewhere."
  type        = string
  default     = null
}

variable "alb_deletion_protection" {
  description = "Enable deletion protection on the load balancer."
  type        = bool
  default     = true
}

# ---------------------------------------------------------------------------------------------------
# Data bucket, queues, stream, alerts
# ---------------------------------------------------------------------------------------------------

variable "bucket_name" {
  description = "Name of the data bucket (CHURN_BUCKET). Null: \"<project>-<environment>-data-<account id>\"."
  type        = string
  default     = null
}

variable "processed_expiration_days" {
  description = "Days after which objects under data/processed/ are expired."
  type        = number
  default     = 30

  validation {
    condition     = var.processed_expiration_days >= 1
    error_message = "processed_expiration_days must be at least 1."
  }
}

variable "reports_expiration_days" {
  description = "Days after which monitoring reports (HTML, several MB per window and model version) under reports/ are expired. The metrics stay in the database."
  type        = number
  default     = 90

  validation {
    condition     = var.reports_expiration_days >= 1
    error_message = "reports_expiration_days must be at least 1."
  }
}

variable "force_destroy" {
  description = "Let `terraform destroy` delete the data and log buckets with their objects and the image repositories with their images. Keep false except to tear down a stack whose data is no longer needed."
  type        = bool
  default     = false
}

variable "noncurrent_version_expiration_days" {
  description = "Days after which non-current object versions of the data bucket are deleted."
  type        = number
  default     = 30
}

variable "kinesis_stream_mode" {
  description = "Capacity mode of the Kinesis stream: PROVISIONED (kinesis_shard_count shards) or ON_DEMAND."
  type        = string
  default     = "PROVISIONED"

  validation {
    condition     = contains(["PROVISIONED", "ON_DEMAND"], var.kinesis_stream_mode)
    error_message = "kinesis_stream_mode must be PROVISIONED or ON_DEMAND."
  }
}

variable "kinesis_shard_count" {
  description = "Number of shards of the Kinesis stream in PROVISIONED mode (ignored in ON_DEMAND mode). One shard takes 1 MB/s, at least 5,000 aggregated customer records/s."
  type        = number
  default     = 2

  validation {
    condition     = var.kinesis_shard_count >= 1
    error_message = "kinesis_shard_count must be at least 1."
  }
}

variable "kinesis_retention_hours" {
  description = "Retention period of the Kinesis stream in hours (24 to 8760). Must exceed the scorer's maximum record age and any outage you want to replay."
  type        = number
  default     = 24

  validation {
    condition     = var.kinesis_retention_hours >= 24 && var.kinesis_retention_hours <= 8760
    error_message = "kinesis_retention_hours must be between 24 and 8760."
  }
}

variable "alert_emails" {
  description = "E-mail addresses subscribed to the alert topic (each must confirm the subscription). Empty: no subscription."
  type        = list(string)
  default     = []
}

variable "iterator_age_alarm_threshold_ms" {
  description = "Alarm when the scorer falls behind the stream by more than this many milliseconds (maximum iterator age over 5 minutes)."
  type        = number
  default     = 60000
}

variable "dlq_alarm_threshold" {
  description = "Alarm when a dead-letter queue holds more than this many visible messages."
  type        = number
  default     = 0
}

variable "log_retention_days" {
  description = "Retention in days of the CloudWatch log groups (Lambda, ECS, VPC flow logs)."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a retention period that CloudWatch Logs supports."
  }
}

# ---------------------------------------------------------------------------------------------------
# Images and application settings
# ---------------------------------------------------------------------------------------------------

variable "image_tag" {
  description = "Tag of the images in the ECR repositories (producer, stream_scorer, batch_monitor, grafana) to deploy, normally the git commit SHA that CD built."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$", var.image_tag))
    error_message = "image_tag must be a valid container image tag."
  }
}

variable "model_name" {
  description = "Registered model name in MLflow (MODEL_NAME)."
  type        = string
  default     = "XGBoostChurnModel"
}

variable "model_alias" {
  description = "Registry alias the scorer serves (MODEL_ALIAS)."
  type        = string
  default     = "staging"
}

variable "model_refresh_seconds" {
  description = "How often a warm scorer re-resolves the model alias (MODEL_REFRESH_SECONDS)."
  type        = number
  default     = 60
}

variable "producer_memory_mb" {
  description = "Memory of the producer Lambda function in MB."
  type        = number
  default     = 1024
}

variable "producer_timeout_seconds" {
  description = "Timeout of the producer Lambda function in seconds (null: function_timeout_seconds of infra/event_source_mappings.json); must not exceed the file-drops queue visibility timeout there. Files that take longer are handed on in segments."
  type        = number
  default     = null
}

variable "producer_reserved_concurrency" {
  description = "Reserved concurrent executions of the producer (caps its share of the account's concurrency and its write rate to the stream)."
  type        = number
  default     = 10
}

variable "scorer_memory_mb" {
  description = "Memory of the stream_scorer Lambda function in MB (CPU share grows with memory)."
  type        = number
  default     = 2048
}

variable "scorer_timeout_seconds" {
  description = "Timeout of the stream_scorer Lambda function in seconds."
  type        = number
  default     = 120
}

variable "scorer_reserved_concurrency" {
  description = "Reserved concurrent executions of the scorer; should be at least shards x parallelization factor."
  type        = number
  default     = 10
}

variable "monitor_settings" {
  description = "Settings of the batch-monitor flow passed to the Prefect worker as environment variables (names as in churn_common/settings.py)."
  type = object({
    window_seconds             = optional(number, 300)
    lateness_seconds           = optional(number, 30)
    retry_seconds              = optional(number, 3600)
    predictions_retention_days = optional(number, 30)
    min_rows                   = optional(number, 50)
    drift_share_threshold      = optional(number, 0.5)
    min_f1                     = optional(number, 0.7)
    min_precision              = optional(number, 0.7)
    min_recall                 = optional(number, 0.7)
    min_accuracy               = optional(number, 0.7)
    alert_cooldown_seconds     = optional(number, 1800)
    retrain_enabled            = optional(bool, false)
    retrain_after_windows      = optional(number, 3)
    retrain_min_rows           = optional(number, 200)
    prefect_work_pool          = optional(string, "churn-monitor")
  })
  default = {}
}

# ---------------------------------------------------------------------------------------------------
# Database
# ---------------------------------------------------------------------------------------------------

variable "db_engine_version" {
  description = "PostgreSQL engine version of the RDS instance (major, or major.minor)."
  type        = string
  default     = "15"
}

variable "db_parameter_group_family" {
  description = "Parameter group family matching db_engine_version."
  type        = string
  default     = "postgres15"
}

variable "db_instance_class" {
  description = "RDS instance class."
  type        = string
  default     = "db.t4g.medium"
}

variable "db_allocated_storage_gb" {
  description = "Initial storage of the RDS instance in GB."
  type        = number
  default     = 20
}

variable "db_max_allocated_storage_gb" {
  description = "Upper bound for RDS storage autoscaling in GB."
  type        = number
  default     = 100
}

variable "db_name" {
  description = "Name of the application database (predictions, monitoring tables). MLflow and Prefect get databases of their own, created on first start."
  type        = string
  default     = "churn"
}

variable "db_master_username" {
  description = "Master user name of the RDS instance. Its password is generated and kept by RDS in Secrets Manager."
  type        = string
  default     = "churn_admin"
}

variable "grafana_db_user" {
  description = "Read-only database role Grafana's data source logs in with (SELECT on the application tables only; created and kept by the Prefect worker at start)."
  type        = string
  default     = "grafana_reader"

  validation {
    condition     = can(regex("^[a-z_][a-z0-9_]{0,62}$", var.grafana_db_user))
    error_message = "grafana_db_user must be a lower-case Postgres identifier."
  }
}

variable "db_multi_az" {
  description = "Run the RDS instance with a standby in a second availability zone."
  type        = bool
  default     = true
}

variable "db_backup_retention_days" {
  description = "Days of automated RDS backups."
  type        = number
  default     = 7

  validation {
    condition     = var.db_backup_retention_days >= 1 && var.db_backup_retention_days <= 35
    error_message = "db_backup_retention_days must be between 1 and 35."
  }
}

variable "db_deletion_protection" {
  description = "Protect the RDS instance from deletion."
  type        = bool
  default     = true
}

# ---------------------------------------------------------------------------------------------------
# ECS services
# ---------------------------------------------------------------------------------------------------

variable "ecs_services" {
  description = "CPU units and memory (MiB) of the Fargate tasks, per service."
  type = map(object({
    cpu    = number
    memory = number
  }))
  default = {
    mlflow         = { cpu = 1024, memory = 2048 }
    prefect_server = { cpu = 1024, memory = 2048 }
    prefect_worker = { cpu = 2048, memory = 8192 }
    grafana        = { cpu = 512, memory = 1024 }
  }

  validation {
    condition     = alltrue([for k in ["mlflow", "prefect_server", "prefect_worker", "grafana"] : contains(keys(var.ecs_services), k)])
    error_message = "ecs_services must define mlflow, prefect_server, prefect_worker and grafana."
  }
}

variable "mlflow_service_count" {
  description = "Number of MLflow server tasks."
  type        = number
  default     = 1
}
