# syntax=docker/dockerfile:1
# Project runtime for the ECS services: the Prefect worker that runs the batch-monitor flow, and
# (with another command) the MLflow tracking server and the Prefect server, so that clients and
# servers share the locked versions. Build from the repository root:
#   docker build --platform linux/amd64 -f infra/docker/batch_monitor.Dockerfile -t churn-batch-monitor .
#
#checkov:skip=CKV_DOCKER_2:One image, three commands (MLflow server, Prefect server, Prefect worker): the load balancer checks the servers' health endpoints and ECS restarts a worker whose process exits.
FROM python:3.11.14-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONPATH=/opt/churn \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    HOME=/var/lib/churn \
    TMPDIR=/tmp \
    LOCAL_STATE_DIR=/var/lib/churn/state \
    PREFECT_HOME=/var/lib/churn/prefect \
    PREFECT_SERVER_ANALYTICS_ENABLED=false \
    MLFLOW_DISABLE_TELEMETRY=true \
    DO_NOT_TRACK=1

WORKDIR /opt/churn

# Generated from Pipfile.lock (python -m infra.docker.requirements): what the flow imports, plus the
# MLflow and Prefect servers and their database drivers, pinned with hashes.
COPY infra/docker/requirements-batch_monitor.txt /tmp/requirements.txt
RUN pip install --no-cache-dir --require-hashes --requirement /tmp/requirements.txt \
    && rm /tmp/requirements.txt

RUN groupadd --system --gid 10001 churn \
    && useradd --system --uid 10001 --gid churn --home-dir /var/lib/churn --no-log-init churn \
    && mkdir -p /var/lib/churn/state /var/lib/churn/prefect \
    && chown -R churn:churn /var/lib/churn

COPY churn_common/ ./churn_common/
COPY batch_monitor/ ./batch_monitor/
COPY training/ ./training/
COPY infra/docker/entrypoint.py ./entrypoint.py

USER 10001:10001

# Writable locations when the root file system is read-only (ECS copies their content on start).
VOLUME ["/var/lib/churn", "/tmp"]

EXPOSE 4200 5000

ENTRYPOINT ["python", "/opt/churn/entrypoint.py"]
CMD ["prefect", "worker", "start", "--pool", "churn-monitor", "--type", "process"]
