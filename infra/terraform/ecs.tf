resource "aws_ecs_cluster" "this" {
  name = local.prefix

  setting {
    name  = "containerInsights"
    value = "enabled"
  }
}

resource "aws_ecs_cluster_capacity_providers" "this" {
  cluster_name       = aws_ecs_cluster.this.name
  capacity_providers = ["FARGATE"]
}

# Private DNS names of the services inside the VPC: mlflow.<namespace>, prefect.<namespace>.
resource "aws_service_discovery_private_dns_namespace" "this" {
  name        = local.service_namespace
  description = "Service discovery of the ${local.prefix} ECS services"
  vpc         = module.network.vpc_id
}

locals {
  # The batch_monitor image (project code and locked dependencies) also runs the MLflow and Prefect
  # servers, so clients and servers always have the same versions.
  runtime_writable_paths = ["/var/lib/churn", "/tmp"]

  monitor_environment = {
    MONITOR_WINDOW_SECONDS   = tostring(var.monitor_settings.window_seconds)
    MONITOR_LATENESS_SECONDS = tostring(var.monitor_settings.lateness_seconds)
    MONITOR_RETRY_SECONDS    = tostring(var.monitor_settings.retry_seconds)
    # Postgres is the first limit (infra/capacity.md): 30 days at about 100 records/s fit the default storage.
    PREDICTIONS_RETENTION_DAYS = tostring(var.monitor_settings.predictions_retention_days)
    MONITOR_MIN_ROWS           = tostring(var.monitor_settings.min_rows)
    DRIFT_SHARE_THRESHOLD      = tostring(var.monitor_settings.drift_share_threshold)
    MIN_F1                     = tostring(var.monitor_settings.min_f1)
    MIN_PRECISION              = tostring(var.monitor_settings.min_precision)
    MIN_RECALL                 = tostring(var.monitor_settings.min_recall)
    MIN_ACCURACY               = tostring(var.monitor_settings.min_accuracy)
    ALERT_COOLDOWN_SECONDS     = tostring(var.monitor_settings.alert_cooldown_seconds)
    RETRAIN_ENABLED            = tostring(var.monitor_settings.retrain_enabled)
    RETRAIN_AFTER_WINDOWS      = tostring(var.monitor_settings.retrain_after_windows)
    RETRAIN_MIN_ROWS           = tostring(var.monitor_settings.retrain_min_rows)
    # Alert e-mails link the dashboard behind the load balancer.
    GRAFANA_URL = "https://${var.public_hostname}"
    # Nobody serves an Evidently workspace on the task's disk: the HTML report in S3 is each window's record.
    EVIDENTLY_WORKSPACE_ENABLED = "false"
  }

  # Read through the listeners, so that services are created after their target group is attached.
  listener_target_groups = { for name, listener in aws_lb_listener.https : name => listener.default_action[0].target_group_arn }

  mlflow_allowed_hosts = join(",", [
    "mlflow.${local.service_namespace}:${local.ports.mlflow}",
    "mlflow.${local.service_namespace}",
    "${var.public_hostname}:${local.ports.mlflow}",
  ])
}

# ---------------------------------------------------------------------------------------------------
# MLflow tracking server and model registry; artifacts proxied to s3://BUCKET/mlflow-artifacts/.
# Every request needs a login (basic-auth app, mlflow_auth.tf); only /health is open.
# ---------------------------------------------------------------------------------------------------

data "aws_iam_policy_document" "mlflow" {
  statement {
    sid       = "ReadWriteArtifacts"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
    resources = ["${module.data_bucket.arn}/${local.prefixes.mlflow}*"]
  }

  statement {
    sid       = "ListArtifacts"
    actions   = ["s3:ListBucket"]
    resources = [module.data_bucket.arn]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${local.prefixes.mlflow}*"]
    }
  }

  statement {
    sid       = "UseDataKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.main.arn]
  }
}

module "mlflow" {
  source = "./modules/ecs_service"

  name               = "${local.prefix}-mlflow"
  container_name     = "mlflow"
  cluster_arn        = aws_ecs_cluster.this.arn
  image              = local.images["batch_monitor"]
  ecr_repository_arn = aws_ecr_repository.this["batch_monitor"].arn
  cpu                = var.ecs_services["mlflow"].cpu
  memory             = var.ecs_services["mlflow"].memory
  desired_count      = var.mlflow_service_count
  container_port     = local.ports.mlflow
  command = [
    "mlflow", "server",
    "--app-name", "basic-auth",
    "--host", "0.0.0.0",
    "--port", tostring(local.ports.mlflow),
    "--workers", "2",
    "--serve-artifacts",
    "--artifacts-destination", "s3://${module.data_bucket.name}/${trimsuffix(local.prefixes.mlflow, "/")}",
    "--allowed-hosts", local.mlflow_allowed_hosts,
    "--cors-allowed-origins", "https://${var.public_hostname}:${local.ports.mlflow}",
  ]
  environment = merge(local.database_environment, {
    ENSURE_DATABASES        = "mlflow,${local.mlflow_auth_database}"
    MLFLOW_BACKEND_DATABASE = "mlflow"
    # Users and grants (infra/docker/entrypoint.py writes the auth configuration from these).
    MLFLOW_AUTH_DATABASE = local.mlflow_auth_database
    MODEL_NAME           = var.model_name
    # The server's job runner starts several ~250 MB processes for features this pipeline does not use.
    MLFLOW_SERVER_ENABLE_JOB_EXECUTION = "false"
    MLFLOW_DISABLE_TELEMETRY           = "true"
    DO_NOT_TRACK                       = "1"
  })
  secrets = merge(local.database_secrets, local.mlflow_admin_secrets, {
    MLFLOW_PIPELINE_USERNAME       = "${local.mlflow_pipeline_secret_arn}:username::"
    MLFLOW_PIPELINE_PASSWORD       = "${local.mlflow_pipeline_secret_arn}:password::"
    MLFLOW_FLASK_SERVER_SECRET_KEY = aws_secretsmanager_secret.mlflow_flask_secret_key.arn
  })
  secret_arns = [
    local.database_secret_arn,
    aws_secretsmanager_secret.mlflow_admin.arn,
    local.mlflow_pipeline_secret_arn,
    aws_secretsmanager_secret.mlflow_flask_secret_key.arn,
  ]

  attach_task_policy = true
  task_policy_json   = data.aws_iam_policy_document.mlflow.json

  subnet_ids                     = module.network.private_subnet_ids
  security_group_ids             = [aws_security_group.this["mlflow"].id]
  load_balanced                  = true
  target_group_arn               = local.listener_target_groups["mlflow"]
  service_discovery_namespace_id = aws_service_discovery_private_dns_namespace.this.id
  discovery_name                 = "mlflow"
  writable_paths                 = local.runtime_writable_paths
  kms_key_arn                    = aws_kms_key.main.arn
  log_retention_days             = var.log_retention_days
}

# ---------------------------------------------------------------------------------------------------
# Prefect server (API + UI), one task: it keeps its event messaging in memory.
# ---------------------------------------------------------------------------------------------------

module "prefect_server" {
  source = "./modules/ecs_service"

  name               = "${local.prefix}-prefect-server"
  container_name     = "prefect-server"
  cluster_arn        = aws_ecs_cluster.this.arn
  image              = local.images["batch_monitor"]
  ecr_repository_arn = aws_ecr_repository.this["batch_monitor"].arn
  cpu                = var.ecs_services["prefect_server"].cpu
  memory             = var.ecs_services["prefect_server"].memory
  desired_count      = 1
  container_port     = local.ports.prefect
  command            = ["prefect", "server", "start", "--host", "0.0.0.0", "--port", tostring(local.ports.prefect)]
  environment = merge(local.database_environment, {
    ENSURE_DATABASES                 = "prefect"
    PREFECT_SERVER_DATABASE_DRIVER   = "postgresql+asyncpg"
    PREFECT_SERVER_DATABASE_HOST     = module.database.address
    PREFECT_SERVER_DATABASE_PORT     = tostring(module.database.port)
    PREFECT_SERVER_DATABASE_NAME     = "prefect"
    PREFECT_UI_API_URL               = "https://${var.public_hostname}:${local.ports.prefect}/api"
    PREFECT_SERVER_ANALYTICS_ENABLED = "false"
    DO_NOT_TRACK                     = "1"
  })
  secrets = merge(local.database_secrets, {
    PREFECT_SERVER_DATABASE_USER     = local.database_secrets.DATABASE_USER
    PREFECT_SERVER_DATABASE_PASSWORD = local.database_secrets.DATABASE_PASSWORD
    PREFECT_SERVER_API_AUTH_STRING   = aws_secretsmanager_secret.prefect_api.arn
  })
  secret_arns = [local.database_secret_arn, aws_secretsmanager_secret.prefect_api.arn]

  subnet_ids                     = module.network.private_subnet_ids
  security_group_ids             = [aws_security_group.this["prefect_server"].id]
  load_balanced                  = true
  target_group_arn               = local.listener_target_groups["prefect"]
  service_discovery_namespace_id = aws_service_discovery_private_dns_namespace.this.id
  discovery_name                 = "prefect"
  writable_paths                 = local.runtime_writable_paths
  kms_key_arn                    = aws_kms_key.main.arn
  log_retention_days             = var.log_retention_days
}

# ---------------------------------------------------------------------------------------------------
# Prefect worker: runs the batch-monitor flow runs (process worker, inside this task).
# ---------------------------------------------------------------------------------------------------

data "aws_iam_policy_document" "prefect_worker" {
  # The flow runs re-read the RDS-managed secret when a connect is refused after a rotation
  # (churn_common/database_credentials.py).
  statement {
    sid       = "ReadDatabaseSecret"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [local.database_secret_arn]
  }

  # batch_monitor/reports/workspace.py only writes the pages; readers open them through their own access.
  statement {
    sid       = "WriteReports"
    actions   = ["s3:PutObject"]
    resources = ["${module.data_bucket.arn}/${local.prefixes.reports}*"]
  }

  # batch_monitor/labels/source.py lists the label files (only under their prefix) and reads each version.
  statement {
    sid       = "ListLabelFiles"
    actions   = ["s3:ListBucket"]
    resources = [module.data_bucket.arn]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${local.prefixes.labels}*"]
    }
  }

  statement {
    sid       = "ReadLabelFiles"
    actions   = ["s3:GetObject", "s3:GetObjectVersion"]
    resources = ["${module.data_bucket.arn}/${local.prefixes.labels}*"]
  }

  statement {
    sid       = "PublishAlerts"
    actions   = ["sns:Publish"]
    resources = [module.alerts.arn]
  }

  statement {
    sid       = "UseDataKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.main.arn]
  }
}

module "prefect_worker" {
  source = "./modules/ecs_service"

  name               = "${local.prefix}-prefect-worker"
  container_name     = "prefect-worker"
  cluster_arn        = aws_ecs_cluster.this.arn
  image              = local.images["batch_monitor"]
  ecr_repository_arn = aws_ecr_repository.this["batch_monitor"].arn
  cpu                = var.ecs_services["prefect_worker"].cpu
  memory             = var.ecs_services["prefect_worker"].memory
  desired_count      = 1
  command            = ["prefect", "worker", "start", "--pool", var.monitor_settings.prefect_work_pool, "--type", "process"]
  environment = merge(local.common_environment, local.database_environment, local.monitor_environment, {
    PREFECT_API_URL                  = local.prefect_api_url
    PREFECT_SERVER_ANALYTICS_ENABLED = "false"
    LOCAL_STATE_DIR                  = "/var/lib/churn/state"
    # Read by batch_monitor/prefect.yaml when CD runs `prefect deploy` as a one-off task of this
    # task definition.
    PREFECT_WORK_POOL   = var.monitor_settings.prefect_work_pool
    CHURN_PROJECT_DIR   = "/opt/churn"
    DATABASE_SECRET_ARN = local.database_secret_arn
    # The worker owns the schema, so it also keeps Grafana's read-only login (infra/docker/entrypoint.py).
    READONLY_ROLE_NAME = var.grafana_db_user
  })
  secrets = merge(local.database_secrets, {
    PREFECT_API_AUTH_STRING = aws_secretsmanager_secret.prefect_api.arn
    READONLY_ROLE_PASSWORD  = aws_secretsmanager_secret.grafana_db_reader.arn
    # MLflow's client reads these; the flow runs inherit them (alias moves of the retraining).
    MLFLOW_TRACKING_USERNAME = "${local.mlflow_pipeline_secret_arn}:username::"
    MLFLOW_TRACKING_PASSWORD = "${local.mlflow_pipeline_secret_arn}:password::"
  })
  secret_arns = [
    local.database_secret_arn,
    aws_secretsmanager_secret.prefect_api.arn,
    aws_secretsmanager_secret.grafana_db_reader.arn,
    local.mlflow_pipeline_secret_arn,
  ]

  attach_task_policy = true
  task_policy_json   = data.aws_iam_policy_document.prefect_worker.json

  subnet_ids         = module.network.private_subnet_ids
  security_group_ids = [aws_security_group.this["prefect_worker"].id]
  writable_paths     = local.runtime_writable_paths
  kms_key_arn        = aws_kms_key.main.arn
  log_retention_days = var.log_retention_days
}

# ---------------------------------------------------------------------------------------------------
# Grafana with the provisioned data source and dashboards (infra/grafana, baked into the image).
# ---------------------------------------------------------------------------------------------------

module "grafana" {
  source = "./modules/ecs_service"

  name               = "${local.prefix}-grafana"
  container_name     = "grafana"
  cluster_arn        = aws_ecs_cluster.this.arn
  image              = local.images["grafana"]
  ecr_repository_arn = aws_ecr_repository.this["grafana"].arn
  cpu                = var.ecs_services["grafana"].cpu
  memory             = var.ecs_services["grafana"].memory
  desired_count      = 1
  container_port     = local.ports.grafana
  environment = {
    GF_SERVER_ROOT_URL                 = "https://${var.public_hostname}/"
    GF_SECURITY_ADMIN_USER             = "admin"
    GF_SECURITY_COOKIE_SECURE          = "true"
    GF_USERS_ALLOW_SIGN_UP             = "false"
    GF_AUTH_ANONYMOUS_ENABLED          = "false"
    GF_ANALYTICS_REPORTING_ENABLED     = "false"
    GF_ANALYTICS_CHECK_FOR_UPDATES     = "false"
    GF_DASHBOARDS_MIN_REFRESH_INTERVAL = "5s"
    GF_LOG_MODE                        = "console"
    POSTGRES_HOST                      = module.database.address
    POSTGRES_PORT                      = tostring(module.database.port)
    POSTGRES_DB                        = var.db_name
    POSTGRES_USER                      = var.grafana_db_user
    POSTGRES_SSLMODE                   = "require"
  }
  secrets = {
    GF_SECURITY_ADMIN_PASSWORD = aws_secretsmanager_secret.grafana_admin.arn
    POSTGRES_PASSWORD          = aws_secretsmanager_secret.grafana_db_reader.arn
  }
  secret_arns = [aws_secretsmanager_secret.grafana_admin.arn, aws_secretsmanager_secret.grafana_db_reader.arn]

  subnet_ids         = module.network.private_subnet_ids
  security_group_ids = [aws_security_group.this["grafana"].id]
  load_balanced      = true
  target_group_arn   = local.listener_target_groups["grafana"]
  writable_paths     = ["/var/lib/grafana", "/var/log/grafana", "/tmp"]
  kms_key_arn        = aws_kms_key.main.arn
  log_retention_days = var.log_retention_days
}
