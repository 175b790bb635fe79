# ---------------------------------------------------------------------------------------------------
# MLflow requires a login (`mlflow server --app-name basic-auth`): whoever may move the serving alias
# decides what the scorer serves. Users and grants live in the `mlflow_auth` database of the RDS
# instance; the MLflow task's entrypoint (infra/docker/entrypoint.py) sets both users' passwords from
# these secrets at every start, so a new random_password takes effect with the next deployment.
#
#   admin          the server's administrator (people only; no component logs in with it)
#   churn-pipeline the scorer (READ), the worker's retraining and `make model-registry` (EDIT on the
#                  served model: new versions, alias moves)
# ---------------------------------------------------------------------------------------------------

locals {
  mlflow_auth_database     = "mlflow_auth"
  mlflow_admin_username    = "admin"
  mlflow_pipeline_username = "churn-pipeline"

  # `<secret ARN>:<JSON key>::` as ECS `secrets` reference one key of a JSON secret.
  mlflow_admin_secrets = {
    MLFLOW_AUTH_ADMIN_USERNAME = "${aws_secretsmanager_secret.mlflow_admin.arn}:username::"
    MLFLOW_AUTH_ADMIN_PASSWORD = "${aws_secretsmanager_secret.mlflow_admin.arn}:password::"
  }
  mlflow_pipeline_secret_arn = aws_secretsmanager_secret.mlflow_pipeline.arn
}

resource "random_password" "mlflow_admin" {
  length  = 40
  special = false
}

resource "random_password" "mlflow_pipeline" {
  length  = 40
  special = false
}

# Signs the basic-auth app's CSRF tokens; the same in every task and worker process of the service.
resource "random_password" "mlflow_flask_secret_key" {
  length  = 64
  special = false
}

resource "aws_secretsmanager_secret" "mlflow_admin" {
  #checkov:skip=CKV2_AWS_57:MLflow's admin password is set by the MLflow task at start; rotate by a new random_password and a redeploy of that service.
  name                    = "${local.prefix}/mlflow-admin"
  description             = "Login (JSON username, password) of MLflow's admin user"
  kms_key_id              = aws_kms_key.main.arn
  recovery_window_in_days = 7
}

resource "aws_secretsmanager_secret_version" "mlflow_admin" {
  secret_id     = aws_secretsmanager_secret.mlflow_admin.id
  secret_string = jsonencode({ username = local.mlflow_admin_username, password = random_password.mlflow_admin.result })
}

resource "aws_secretsmanager_secret" "mlflow_pipeline" {
  #checkov:skip=CKV2_AWS_57:The pipeline's MLflow password is set by the MLflow task at start and read by the worker at start; rotate by a new random_password and a redeploy of both (the scorer re-reads the secret when refused).
  name                    = "${local.prefix}/mlflow-pipeline"
  description             = "Login (JSON username, password) of the pipeline's MLflow user: scorer, worker, make model-registry"
  kms_key_id              = aws_kms_key.main.arn
  recovery_window_in_days = 7
}

resource "aws_secretsmanager_secret_version" "mlflow_pipeline" {
  secret_id     = aws_secretsmanager_secret.mlflow_pipeline.id
  secret_string = jsonencode({ username = local.mlflow_pipeline_username, password = random_password.mlflow_pipeline.result })
}

resource "aws_secretsmanager_secret" "mlflow_flask_secret_key" {
  #checkov:skip=CKV2_AWS_57:The key signs short-lived CSRF tokens of MLflow's sign-up form only; a new random_password and a redeploy of the MLflow service replace it.
  name                    = "${local.prefix}/mlflow-flask-secret-key"
  description             = "MLFLOW_FLASK_SERVER_SECRET_KEY of the MLflow server's basic-auth app"
  kms_key_id              = aws_kms_key.main.arn
  recovery_window_in_days = 7
}

resource "aws_secretsmanager_secret_version" "mlflow_flask_secret_key" {
  secret_id     = aws_secretsmanager_secret.mlflow_flask_secret_key.id
  secret_string = random_password.mlflow_flask_secret_key.result
}

output "mlflow_admin_secret_arn" {
  description = "Secrets Manager secret with the login (JSON username, password) of MLflow's admin user."
  value       = aws_secretsmanager_secret.mlflow_admin.arn
}

output "mlflow_pipeline_secret_arn" {
  description = "Secrets Manager secret with the pipeline's MLflow login (JSON username, password), e.g. for `make model-registry`."
  value       = aws_secretsmanager_secret.mlflow_pipeline.arn
}
