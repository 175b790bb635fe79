# Internet-facing load balancer, reachable only from var.allowed_cidr_blocks (security group):
#   https://<public_hostname>/       -> Grafana
#   https://<public_hostname>:5000/  -> MLflow
#   https://<public_hostname>:4200/  -> Prefect UI and API
resource "aws_lb" "this" {
  #checkov:skip=CKV2_AWS_28:Access is limited to allowed_cidr_blocks by the security group; a WAF web ACL can be associated later without changing this resource.
  name                       = "${local.prefix}-alb"
  load_balancer_type         = "application"
  internal                   = false
  security_groups            = [aws_security_group.this["alb"].id]
  subnets                    = module.network.public_subnet_ids
  drop_invalid_header_fields = true
  enable_deletion_protection = var.alb_deletion_protection
  idle_timeout               = 120

  access_logs {
    bucket  = aws_s3_bucket.logs.id
    prefix  = "alb"
    enabled = true
  }

  depends_on = [aws_s3_bucket_policy.logs]
}

locals {
  health_check_paths = {
    grafana = "/api/health"
    mlflow  = "/health"
    prefect = "/api/health"
  }
}

resource "aws_lb_target_group" "this" {
  #checkov:skip=CKV_AWS_378:TLS terminates at the load balancer; targets serve HTTP inside private subnets, reachable only from the load balancer's security group.
  for_each = local.public_ports

  name                 = "${local.prefix}-${each.key}"
  port                 = each.value.target
  protocol             = "HTTP"
  target_type          = "ip"
  vpc_id               = module.network.vpc_id
  deregistration_delay = 30

  health_check {
    path                = local.health_check_paths[each.key]
    matcher             = "200"
    interval            = 30
    timeout             = 5
    healthy_threshold   = 2
    unhealthy_threshold = 3
  }
}

resource "aws_lb_listener" "https" {
  for_each = local.public_ports

  load_balancer_arn = aws_lb.this.arn
  port              = each.value.listener
  protocol          = "HTTPS"
  ssl_policy        = "ELBSecurityPolicy-TLS13-1-2-2021-06"
  certificate_arn   = var.certificate_arn

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.this[each.key].arn
  }
}

resource "aws_lb_listener" "http_redirect" {
  load_balancer_arn = aws_lb.this.arn
  port              = 80
  protocol          = "HTTP"

  default_action {
    type = "redirect"

    redirect {
      port        = "443"
      protocol    = "HTTPS"
      status_code = "HTTP_301"
    }
  }
}

resource "aws_route53_record" "public" {
  count = var.route53_zone_id == null ? 0 : 1

  zone_id = var.route53_zone_id
  name    = var.public_hostname
  type    = "A"

  alias {
    name                   = aws_lb.this.dns_name
    zone_id                = aws_lb.this.zone_id
    evaluate_target_health = true
  }
}
