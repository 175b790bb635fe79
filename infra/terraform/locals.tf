data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

locals {
  # One source of truth for the event source mappings (also read by the local Lambda service).
  event_source_mappings = jsondecode(file("${path.module}/../event_source_mappings.json"))
  producer_mapping      = local.event_source_mappings.producer
  # The producer hands the rest of a long file to a fresh invocation before this runs out (the local
  # Lambda service reads the same number from the mappings file).
  producer_timeout_seconds = coalesce(var.producer_timeout_seconds, local.producer_mapping.function_timeout_seconds)
  scorer_mapping           = local.event_source_mappings.stream_scorer

  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  prefix     = "${var.project}-${var.environment}"

  # Resource names fixed by the application come from the mappings file ("sqs:file-drops",
  # "kinesis:customer-records", "sqs:stream-scorer-dlq") and from churn_common/settings.py.
  file_drops_queue_name = "${split(":", local.producer_mapping.source)[1]}${var.resource_name_suffix}"
  file_drops_dlq_name   = "${split(":", local.producer_mapping.source)[1]}-dlq${var.resource_name_suffix}"
  stream_name           = "${split(":", local.scorer_mapping.source)[1]}${var.resource_name_suffix}"
  scorer_dlq_name       = "${split(":", local.scorer_mapping.on_failure_destination)[1]}${var.resource_name_suffix}"
  alert_topic_name      = "churn-model-alerts${var.resource_name_suffix}"
  bucket_name           = coalesce(var.bucket_name, "${local.prefix}-data-${local.account_id}")

  # Key prefixes of the data bucket (defaults of churn_common/settings.py).
  prefixes = {
    input     = "data/input/"
    rejected  = "data/rejected/"
    manifests = "data/manifests/"
    processed = "data/processed/"
    errored   = "data/errored/"
    reports   = "reports/"
    labels    = "data/labels/"
    mlflow    = "mlflow-artifacts/"
  }

  # Ports of the services behind the load balancer and in the private DNS namespace.
  ports = {
    grafana = 3000
    mlflow  = 5000
    prefect = 4200
  }
  service_namespace   = "${local.prefix}.internal"
  mlflow_internal_url = "http://mlflow.${local.service_namespace}:${local.ports.mlflow}"
  prefect_api_url     = "http://prefect.${local.service_namespace}:${local.ports.prefect}/api"

  image_repositories = ["producer", "stream_scorer", "batch_monitor", "grafana"]
  images             = { for name in local.image_repositories : name => "${aws_ecr_repository.this[name].repository_url}:${var.image_tag}" }

  # Settings shared by every component that reads churn_common.settings.
  common_environment = {
    CHURN_BUCKET             = module.data_bucket.name
    KINESIS_STREAM           = module.stream.name
    FILE_DROPS_QUEUE         = module.file_drops_queue.name
    ALERT_TOPIC              = module.alerts.name
    ALERT_TOPIC_ARN          = module.alerts.arn
    INPUT_PREFIX             = local.prefixes.input
    REJECTED_PREFIX          = local.prefixes.rejected
    MANIFEST_PREFIX          = local.prefixes.manifests
    PROCESSED_PREFIX         = local.prefixes.processed
    ERRORED_PREFIX           = local.prefixes.errored
    REPORTS_PREFIX           = local.prefixes.reports
    MLFLOW_TRACKING_URI      = local.mlflow_internal_url
    MODEL_NAME               = var.model_name
    MODEL_ALIAS              = var.model_alias
    MODEL_REFRESH_SECONDS    = tostring(var.model_refresh_seconds)
    MLFLOW_DISABLE_TELEMETRY = "true"
    DO_NOT_TRACK             = "1"
  }

  # Where the database is; user and password come from the RDS-managed secret.
  database_environment = {
    DATABASE_HOST    = module.database.address
    DATABASE_PORT    = tostring(module.database.port)
    DATABASE_NAME    = var.db_name
    DATABASE_SSLMODE = "require"
  }
  database_secret_arn = module.database.master_user_secret_arn
  database_secrets = {
    DATABASE_USER     = "${module.database.master_user_secret_arn}:username::"
    DATABASE_PASSWORD = "${module.database.master_user_secret_arn}:password::"
  }
}
