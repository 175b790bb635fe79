# syntax=docker/dockerfile:1
# Grafana with the project's provisioning (Postgres data source and the two dashboards) baked in.
# Build from the repository root:
#   docker build -f infra/docker/grafana.Dockerfile -t churn-grafana .
# Runtime environment: POSTGRES_HOST, POSTGRES_PORT, POSTGRES_DB, POSTGRES_USER, POSTGRES_PASSWORD,
# POSTGRES_SSLMODE (see infra/grafana/datasources/postgres.yaml) and GF_SECURITY_ADMIN_PASSWORD.
#
#checkov:skip=CKV_DOCKER_2:ECS ignores Docker health checks; the load balancer's target group checks /api/health and replaces failing tasks.
FROM grafana/grafana-oss:11.6.0

COPY infra/grafana/datasources/ /etc/grafana/provisioning/datasources/
COPY infra/grafana/dashboards/dashboards.yaml /etc/grafana/provisioning/dashboards/dashboards.yaml
COPY infra/grafana/dashboards/json/ /etc/grafana/dashboards/churn/

# Writable locations when the root file system is read-only (ECS copies their content on start).
VOLUME ["/var/lib/grafana", "/var/log/grafana", "/tmp"]

# The base image's unprivileged grafana user.
USER 472

EXPOSE 3000
