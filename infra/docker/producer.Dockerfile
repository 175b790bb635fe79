# syntax=docker/dockerfile:1
# producer Lambda function as a container image. Build from the repository root:
#   docker build -f infra/docker/producer.Dockerfile -t churn-producer .
#
# Base: the official Python 3.11 image with the Lambda runtime interface client (awslambdaric).
# The AWS base image for Python 3.11 (public.ecr.aws/lambda/python:3.11) is Amazon Linux 2 with
# glibc 2.26, for which the locked numpy and xgboost-cpu publish no wheels (manylinux_2_27/2_28).
FROM python:3.11.14-slim-bookworm

ENV LAMBDA_TASK_ROOT=/var/task \
    PYTHONPATH=/var/task \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

WORKDIR /var/task

# Generated from Pipfile.lock: only the packages the producer imports.
COPY infra/docker/requirements-producer.txt /tmp/requirements.txt
RUN pip install --no-cache-dir --requirement /tmp/requirements.txt awslambdaric==4.2.2 \
    && rm /tmp/requirements.txt

COPY churn_common/ ./churn_common/
COPY producer/ ./producer/

ENTRYPOINT ["python", "-m", "awslambdaric"]
CMD ["producer.handler.lambda_handler"]
