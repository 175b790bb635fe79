output "address" {
  description = "Host name of the instance."
  value       = aws_db_instance.this.address
}

output "port" {
  description = "Port of the instance."
  value       = aws_db_instance.this.port
}

output "arn" {
  description = "ARN of the instance."
  value       = aws_db_instance.this.arn
}

output "master_user_secret_arn" {
  description = "ARN of the Secrets Manager secret (JSON with username and password) that RDS manages for the master user."
  value       = aws_db_instance.this.master_user_secret[0].secret_arn
}
