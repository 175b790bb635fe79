"""The embedded stack as a whole: emulator, resources, Lambda service wiring, environment hygiene."""

from __future__ import annotations

import os

import pytest

from churn_common.aws import client
from infra.local.stack import LocalStack
from tests.conftest import free_port

pytestmark = pytest.mark.integration


def test_stack_provisions_terraform_names_and_restores_the_environment(env, tmp_path) -> None:
    # GIVEN a stack without Prefect on a free port
    port = free_port()
    env(LOCAL_STATE_DIR=str(tmp_path), LOCAL_AWS_PORT=str(port))
    before = os.environ.get("AWS_ENDPOINT_URL")
    # WHEN it runs
    with LocalStack(with_prefect=False) as stack:
        # THEN the emulator answers over HTTP with the pipeline's resources
        assert os.environ["AWS_ENDPOINT_URL"] == f"http://127.0.0.1:{port}"
        assert stack.resources is not None
        assert (
            client("kinesis").describe_stream_summary(StreamName="customer-records")["StreamDescriptionSummary"][
                "OpenShardCount"
            ]
            == 2
        )
        notification = client("s3").get_bucket_notification_configuration(Bucket="churn-pipeline-data")
        rules = notification["QueueConfigurations"][0]["Filter"]["Key"]["FilterRules"]
        assert {r["Name"].lower(): r["Value"] for r in rules} == {"prefix": "data/input/", "suffix": ".csv"}
        # AND the Lambda service polls the queue and both shards
        assert set(stack.lambda_service.stats) == {"producer", "stream_scorer"}
        # AND localstack-client reaches the same emulator
        import localstack_client.session

        streams = localstack_client.session.Session().client("kinesis").list_streams()["StreamNames"]
        assert streams == ["customer-records"]
    # THEN afterwards the environment is as it was
    assert os.environ.get("AWS_ENDPOINT_URL") == before
