"""The embedded stack as a whole: emulator, resources, Lambda service wiring, environment hygiene."""

from __future__ import annotations

import os
import time
from typing import Any

import pytest
from moto.moto_api._internal.models import moto_api_backend

from churn_common.aws import client
from churn_common.settings import get_settings
from infra.local.lambda_service import Handler
from infra.local.principals import read_credentials_file
from infra.local.stack import LocalStack, credentials_path
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
        # every name under the input prefix (the producer errors what it cannot read), and versions kept
        assert {r["Name"].lower(): r["Value"] for r in rules} == {"prefix": "data/input/"}
        assert client("s3").get_bucket_versioning(Bucket="churn-pipeline-data")["Status"] == "Enabled"
        # AND the Lambda service polls the queue and both shards
        assert set(stack.lambda_service.stats) == {"producer", "stream_scorer"}
        # AND localstack-client reaches the same emulator, signing with the operator's key the stack wrote
        import localstack_client.session

        key = read_credentials_file(credentials_path(get_settings()))
        session = localstack_client.session.Session(
            aws_access_key_id=key.access_key_id, aws_secret_access_key=key.secret_access_key, aws_session_token=None
        )
        streams = session.client("kinesis").list_streams()["StreamNames"]
        assert streams == ["customer-records"]
    # THEN afterwards the environment is as it was
    assert os.environ.get("AWS_ENDPOINT_URL") == before


def _delivered_keys(records: int, *, run: str, received: set[str]) -> bool:
    """Put ``records`` records on the stream, then wait until the scorer function received them all."""
    keys = [f"{run}-{i}" for i in range(records)]
    client("kinesis").put_records(
        StreamName="customer-records", Records=[{"Data": b"x", "PartitionKey": key} for key in keys]
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not set(keys) <= received:
        time.sleep(0.2)
    return set(keys) <= received


def test_a_new_stack_run_delivers_its_fresh_stream_from_the_start(env, tmp_path) -> None:
    # GIVEN a stack whose scorer function only records what it receives, run once in a state folder:
    # its Lambda service checkpointed the stream's records there
    env(LOCAL_STATE_DIR=str(tmp_path), LOCAL_AWS_PORT=str(free_port()))
    received: set[str] = set()

    def recorder(event: dict[str, Any], _context: Any) -> dict[str, Any]:
        received.update(r["kinesis"]["partitionKey"] for r in event["Records"])
        return {"batchItemFailures": []}

    def wrap(name: str, handler: Handler) -> Handler:
        return recorder if name == "stream_scorer" else handler

    with LocalStack(with_prefect=False, wrap_handler=wrap):
        assert _delivered_keys(40, run="first", received=received)
    # WHEN the stack runs again in the same folder from a new process (whose emulator holds no stream yet)
    moto_api_backend.reset()
    received.clear()
    with LocalStack(with_prefect=False, wrap_handler=wrap):
        # THEN every record of the new stream reaches the function (the earlier checkpoints skip none),
        # and nothing of the earlier run's stream comes back
        assert _delivered_keys(10, run="second", received=received)
        # (a later batch reaches the function after everything before it on its shards, old records included)
        assert _delivered_keys(10, run="later", received=received)
    assert received == {f"{run}-{i}" for run in ("second", "later") for i in range(10)}
