module "database" {
  source = "./modules/rds_postgres"

  identifier              = "${local.prefix}-postgres"
  engine_version          = var.db_engine_version
  parameter_group_family  = var.db_parameter_group_family
  instance_class          = var.db_instance_class
  allocated_storage       = var.db_allocated_storage_gb
  max_allocated_storage   = var.db_max_allocated_storage_gb
  db_name                 = var.db_name
  master_username         = var.db_master_username
  multi_az                = var.db_multi_az
  backup_retention_period = var.db_backup_retention_days
  deletion_protection     = var.db_deletion_protection
  subnet_ids              = module.network.private_subnet_ids
  security_group_ids      = [aws_security_group.this["database"].id]
  kms_key_arn             = aws_kms_key.main.arn
  log_retention_days      = var.log_retention_days
}

# ---------------------------------------------------------------------------------------------------
# Generated service credentials (kept in Secrets Manager; the values also live in the encrypted
# Terraform state).
# ---------------------------------------------------------------------------------------------------

resource "random_password" "grafana_admin" {
  length  = 32
  special = false
}

resource "random_password" "grafana_db_reader" {
  length  = 40
  special = false
}

resource "random_password" "prefect_api" {
  length  = 40
  special = false
}

resource "aws_secretsmanager_secret" "grafana_admin" {
  #checkov:skip=CKV2_AWS_57:Grafana's admin password is not rotated automatically: Grafana reads it only on first start of an empty database.
  name                    = "${local.prefix}/grafana-admin-password"
  description             = "Password of Grafana's admin user"
  kms_key_id              = aws_kms_key.main.arn
  recovery_window_in_days = 7
}

resource "aws_secretsmanager_secret_version" "grafana_admin" {
  secret_id     = aws_secretsmanager_secret.grafana_admin.id
  secret_string = random_password.grafana_admin.result
}

resource "aws_secretsmanager_secret" "prefect_api" {
  #checkov:skip=CKV2_AWS_57:The Prefect API auth string is shared by the server and the worker; rotation needs both restarted together (redeploy).
  name                    = "${local.prefix}/prefect-api-auth-string"
  description             = "Basic-auth string (user:password) of the Prefect server API"
  kms_key_id              = aws_kms_key.main.arn
  recovery_window_in_days = 7
}

resource "aws_secretsmanager_secret_version" "prefect_api" {
  secret_id     = aws_secretsmanager_secret.prefect_api.id
  secret_string = "churn:${random_password.prefect_api.result}"
}

resource "aws_secretsmanager_secret" "grafana_db_reader" {
  #checkov:skip=CKV2_AWS_57:Grafana's read-only database login is set by the worker at start and read by Grafana at start; rotate by a new random_password and a redeploy of both.
  name                    = "${local.prefix}/grafana-db-reader-password"
  description             = "Password of the read-only database role Grafana's data source logs in with"
  kms_key_id              = aws_kms_key.main.arn
  recovery_window_in_days = 7
}

resource "aws_secretsmanager_secret_version" "grafana_db_reader" {
  secret_id     = aws_secretsmanager_secret.grafana_db_reader.id
  secret_string = random_password.grafana_db_reader.result
}
