module "network" {
  source = "./modules/network"

  name               = local.prefix
  cidr_block         = var.vpc_cidr
  availability_zones = var.availability_zones
  single_nat_gateway = var.single_nat_gateway
  kms_key_arn        = aws_kms_key.main.arn
  log_retention_days = var.log_retention_days
}

# ---------------------------------------------------------------------------------------------------
# Security groups: one per component; every rule names its peer.
# ---------------------------------------------------------------------------------------------------

locals {
  security_groups = {
    alb            = "Load balancer: HTTPS from the allowed CIDR blocks"
    grafana        = "Grafana tasks"
    mlflow         = "MLflow server tasks"
    prefect_server = "Prefect server tasks"
    prefect_worker = "Prefect worker tasks (batch-monitor flow runs)"
    producer       = "producer Lambda function"
    stream_scorer  = "stream_scorer Lambda function"
    database       = "RDS PostgreSQL"
  }

  public_ports = {
    grafana = { listener = 443, target = local.ports.grafana }
    mlflow  = { listener = local.ports.mlflow, target = local.ports.mlflow }
    prefect = { listener = local.ports.prefect, target = local.ports.prefect }
  }

  # source security group -> destination security group on a port.
  internal_flows = {
    alb_to_grafana      = { from = "alb", to = "grafana", port = local.ports.grafana }
    alb_to_mlflow       = { from = "alb", to = "mlflow", port = local.ports.mlflow }
    alb_to_prefect      = { from = "alb", to = "prefect_server", port = local.ports.prefect }
    scorer_to_mlflow    = { from = "stream_scorer", to = "mlflow", port = local.ports.mlflow }
    worker_to_mlflow    = { from = "prefect_worker", to = "mlflow", port = local.ports.mlflow }
    worker_to_prefect   = { from = "prefect_worker", to = "prefect_server", port = local.ports.prefect }
    grafana_to_database = { from = "grafana", to = "database", port = 5432 }
    mlflow_to_database  = { from = "mlflow", to = "database", port = 5432 }
    prefect_to_database = { from = "prefect_server", to = "database", port = 5432 }
    worker_to_database  = { from = "prefect_worker", to = "database", port = 5432 }
    scorer_to_database  = { from = "stream_scorer", to = "database", port = 5432 }
  }

  # Components that call AWS APIs, pull images or ship logs over HTTPS (through the NAT gateway or
  # the S3 gateway endpoint).
  https_egress = ["grafana", "mlflow", "prefect_server", "prefect_worker", "producer", "stream_scorer"]

  public_ingress = merge([
    for name, port in local.public_ports : {
      for cidr in var.allowed_cidr_blocks : "${name}-${cidr}" => { port = port.listener, cidr = cidr, name = name }
    }
  ]...)
  http_redirect_ingress = { for cidr in var.allowed_cidr_blocks : cidr => cidr }
}

resource "aws_security_group" "this" {
  #checkov:skip=CKV2_AWS_5:Every group is attached through a module input (ECS service network configuration, Lambda vpc_config, RDS); the static graph does not follow for_each keys into module calls.
  for_each = local.security_groups

  name_prefix = "${local.prefix}-${replace(each.key, "_", "-")}-"
  description = each.value
  vpc_id      = module.network.vpc_id

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "public" {
  for_each = local.public_ingress

  security_group_id = aws_security_group.this["alb"].id
  description       = "${each.value.name} over HTTPS from an allowed CIDR block"
  ip_protocol       = "tcp"
  from_port         = each.value.port
  to_port           = each.value.port
  cidr_ipv4         = each.value.cidr
}

resource "aws_vpc_security_group_ingress_rule" "http_redirect" {
  for_each = local.http_redirect_ingress

  security_group_id = aws_security_group.this["alb"].id
  description       = "HTTP from an allowed CIDR block, redirected to HTTPS"
  ip_protocol       = "tcp"
  from_port         = 80
  to_port           = 80
  cidr_ipv4         = each.value
}

resource "aws_vpc_security_group_ingress_rule" "internal" {
  for_each = local.internal_flows

  security_group_id            = aws_security_group.this[each.value.to].id
  referenced_security_group_id = aws_security_group.this[each.value.from].id
  description                  = "${each.value.from} to ${each.value.to}"
  ip_protocol                  = "tcp"
  from_port                    = each.value.port
  to_port                      = each.value.port
}

resource "aws_vpc_security_group_egress_rule" "internal" {
  for_each = local.internal_flows

  security_group_id            = aws_security_group.this[each.value.from].id
  referenced_security_group_id = aws_security_group.this[each.value.to].id
  description                  = "${each.value.from} to ${each.value.to}"
  ip_protocol                  = "tcp"
  from_port                    = each.value.port
  to_port                      = each.value.port
}

resource "aws_vpc_security_group_egress_rule" "https" {
  for_each = toset(local.https_egress)

  security_group_id = aws_security_group.this[each.key].id
  description       = "HTTPS to AWS APIs and image registries"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}
