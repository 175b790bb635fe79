# syntax=docker/dockerfile:1
# producer Lambda function as a container image (linux/amd64). Build from the repository root:
#   docker build --platform linux/amd64 -f infra/docker/producer.Dockerfile -t churn-producer .
#
# Base: the official Python 3.11 image with the Lambda runtime interface client (awslambdaric).
# The AWS base image for Python 3.11 (public.ecr.aws/lambda/python:3.11) is Amazon Linux 2 with
# glibc 2.26, for which the locked numpy and xgboost-cpu publish no wheels (manylinux_2_27/2_28).
#
#checkov:skip=CKV_DOCKER_2:Lambda ignores HEALTHCHECK; invocation errors are reported by the runtime API and alarmed on in CloudWatch.
FROM python:3.11.14-slim-bookworm

ENV LAMBDA_TASK_ROOT=/var/task \
    PYTHONPATH=/var/task \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

WORKDIR /var/task

# Generated from Pipfile.lock (python -m infra.docker.requirements): only what the producer imports,
# pinned with hashes; plus the runtime interface client.
COPY infra/docker/requirements-producer.txt infra/docker/requirements-lambda-runtime.txt /tmp/
RUN pip install --no-cache-dir --require-hashes \
        --requirement /tmp/requirements-producer.txt \
        --requirement /tmp/requirements-lambda-runtime.txt \
    && rm /tmp/requirements-*.txt

COPY churn_common/ ./churn_common/
COPY producer/ ./producer/

# Lambda runs the function as a user of its own; locally the image runs unprivileged too.
USER 65534:65534

ENTRYPOINT ["python", "-m", "awslambdaric"]
CMD ["producer.handler.lambda_handler"]
