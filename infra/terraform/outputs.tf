output "bucket_name" {
  description = "Data bucket (CHURN_BUCKET). Drop CSV files under data/input/."
  value       = module.data_bucket.name
}

output "kinesis_stream_name" {
  description = "Kinesis stream of customer records (KINESIS_STREAM)."
  value       = module.stream.name
}

output "kinesis_stream_arn" {
  description = "ARN of the Kinesis stream."
  value       = module.stream.arn
}

output "file_drops_queue_url" {
  description = "URL of the file-drops queue."
  value       = module.file_drops_queue.url
}

output "file_drops_dlq_url" {
  description = "URL of the file-drops dead-letter queue."
  value       = module.file_drops_queue.dead_letter_queue_url
}

output "stream_scorer_dlq_url" {
  description = "URL of the scorer's on-failure destination queue."
  value       = module.scorer_dlq.url
}

output "alert_topic_arn" {
  description = "ARN of the alert topic (ALERT_TOPIC_ARN)."
  value       = module.alerts.arn
}

output "lambda_function_names" {
  description = "Names of the Lambda functions."
  value       = local.functions
}

output "ecr_repository_urls" {
  description = "ECR repository URL per image (producer, stream_scorer, batch_monitor, grafana)."
  value       = { for name, repo in aws_ecr_repository.this : name => repo.repository_url }
}

output "load_balancer_dns_name" {
  description = "DNS name of the load balancer (point public_hostname at it when route53_zone_id is not set)."
  value       = aws_lb.this.dns_name
}

output "grafana_url" {
  description = "Grafana (user admin; password in the grafana_admin_secret_arn secret)."
  value       = "https://${var.public_hostname}/"
}

output "mlflow_url" {
  description = "MLflow UI and API from the allowed CIDR blocks."
  value       = "https://${var.public_hostname}:${local.ports.mlflow}/"
}

output "prefect_url" {
  description = "Prefect UI from the allowed CIDR blocks (basic auth: see prefect_api_auth_secret_arn)."
  value       = "https://${var.public_hostname}:${local.ports.prefect}/"
}

output "mlflow_internal_url" {
  description = "MLflow tracking URI inside the VPC (MLFLOW_TRACKING_URI of the scorer and the worker)."
  value       = local.mlflow_internal_url
}

output "prefect_internal_api_url" {
  description = "Prefect API URL inside the VPC (PREFECT_API_URL of the worker)."
  value       = local.prefect_api_url
}

output "database_address" {
  description = "Host name of the RDS PostgreSQL instance."
  value       = module.database.address
}

output "database_secret_arn" {
  description = "Secrets Manager secret (RDS-managed) with the database master user name and password."
  value       = module.database.master_user_secret_arn
}

output "grafana_admin_secret_arn" {
  description = "Secrets Manager secret with Grafana's admin password."
  value       = aws_secretsmanager_secret.grafana_admin.arn
}

output "prefect_api_auth_secret_arn" {
  description = "Secrets Manager secret with the Prefect API basic-auth string (user:password)."
  value       = aws_secretsmanager_secret.prefect_api.arn
}

output "ecs_cluster_name" {
  description = "ECS cluster of the services."
  value       = aws_ecs_cluster.this.name
}

output "prefect_worker_task_definition" {
  description = "Task definition family of the Prefect worker; CD runs `prefect deploy` as a one-off task of it."
  value       = module.prefect_worker.task_definition_family
}

output "prefect_worker_network" {
  description = "Subnets and security group for one-off tasks of the worker's task definition (awsvpc configuration)."
  value = {
    subnets         = module.network.private_subnet_ids
    security_groups = [aws_security_group.this["prefect_worker"].id]
  }
}

output "prefect_work_pool" {
  description = "Work pool the worker polls (the deployment in batch_monitor/prefect.yaml must target it)."
  value       = var.monitor_settings.prefect_work_pool
}
