"""The local stack runs each component as its deployed role, with the emulator enforcing IAM.

A file dropped as the operator is read, streamed and moved by the producer under the producer's policy,
scored by the scorer under the scorer's (its database login read from Secrets Manager), and every call
either made is allowed by the exact policy Terraform renders, conditions included. Without a statement
the code needs, the emulator refuses the call and the component's work fails, so the enforcement is real.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from sqlalchemy import func, make_url, select

from batch_monitor.labels.source import label_objects, read_label_object
from churn_common.aws import client
from churn_common.database import get_engine, predictions
from churn_common.database_credentials import fetch_secret_string
from churn_common.settings import get_settings
from infra.local.aws_call_log import read_call_log
from infra.local.driver import manifest_of, upload, wait_for_manifest
from infra.local.policy_documents import LOCAL_ACCOUNT, MONITOR, PRODUCER, STREAM_SCORER, Policy
from infra.local.principals import acting_as
from infra.local.resources import FILE_DROPS_DLQ
from infra.local.stack import LocalStack, PolicyEdit, unedited
from tests.conftest import REPO_ROOT, free_port
from tests.iam_policy import denials, operations_by_principal

pytestmark = pytest.mark.integration

SAMPLE = REPO_ROOT / "data" / "samples" / "reference.csv"
WAIT_SECONDS = 90


def without_statement(component: str, sid: str) -> PolicyEdit:
    def edit(policies: dict[str, Policy]) -> dict[str, Policy]:
        policy = policies[component]
        kept = [s for s in policy["Statement"] if s["Sid"] != sid]
        assert len(kept) == len(policy["Statement"]) - 1, f"{component} has no statement {sid}"
        return {**policies, component: {**policy, "Statement": kept}}

    return edit


@pytest.fixture
def deployed_stack(env, tmp_path: Path, postgres_url: str, registered_model) -> Callable[..., LocalStack]:  # type: ignore[no-untyped-def]
    """A stack factory on free ports and its own state, scoring into real Postgres with the session's model."""
    env(
        LOCAL_STATE_DIR=str(tmp_path),
        LOCAL_AWS_PORT=str(free_port()),
        DATABASE_URL=postgres_url,
        MLFLOW_TRACKING_URI=get_settings().resolved_mlflow_uri,
    )

    def make(*, edit_policies: PolicyEdit = unedited) -> LocalStack:
        return LocalStack(with_prefect=False, edit_policies=edit_policies)

    return make


def stored_rows(source_id: str) -> int:
    with get_engine(get_settings().resolved_database_url).connect() as connection:
        query = select(func.count()).select_from(predictions).where(predictions.c.source_id == source_id)
        return int(connection.execute(query).scalar_one())


def wait_for_rows(source_id: str, expected: int) -> int:
    deadline = time.monotonic() + WAIT_SECONDS
    while (stored := stored_rows(source_id)) < expected and time.monotonic() < deadline:
        time.sleep(0.3)
    return stored


@contextmanager
def running(stack: LocalStack) -> Iterator[LocalStack]:
    with stack:
        yield stack


def sample_rows() -> int:
    return len(SAMPLE.read_text().strip().splitlines()) - 1


def test_each_component_works_under_its_deployed_role_and_calls_only_what_that_role_grants(deployed_stack) -> None:  # type: ignore[no-untyped-def]
    # GIVEN the stack running every component as its deployed role, IAM enforced
    with running(deployed_stack()) as stack:
        # WHEN the operator drops a file
        version = upload(SAMPLE, name="Deployed Roles.CSV")
        manifest = wait_for_manifest(version, timeout=WAIT_SECONDS)
        # THEN the producer streamed every row and the scorer stored each
        assert manifest.records_sent == sample_rows()
        assert wait_for_rows(version.source_id, manifest.records_sent) == manifest.records_sent
        # AND a component acting outside its grant is refused by the emulator
        with acting_as(PRODUCER), pytest.raises(ClientError) as refused:
            client("s3").put_object(Bucket=get_settings().bucket, Key="reports/forged.html", Body=b"x")
        assert refused.value.response["Error"]["Code"] == "AccessDenied"
        with acting_as(MONITOR), pytest.raises(ClientError):
            client("kinesis").put_records(
                StreamName=get_settings().stream_name, Records=[{"Data": b"x", "PartitionKey": "k"}]
            )
        # AND the database login in Secrets Manager is the scorer's and the monitor's to read, not the producer's
        secret = get_settings().database_secret_arn
        assert secret is not None
        for reader in (STREAM_SCORER, MONITOR):
            with acting_as(reader):
                assert (
                    json.loads(fetch_secret_string(secret))["username"]
                    == make_url(get_settings().database_url).username
                )
        with acting_as(PRODUCER), pytest.raises(ClientError):
            fetch_secret_string(secret)
        # AND the monitor lists the label files under their prefix and reads the version it found
        settings = get_settings()
        key = f"{settings.labels_prefix}Deployed Roles.CSV"
        client("s3").put_object(Bucket=settings.bucket, Key=key, Body=b"record_id,churned,observed_at\n")
        with acting_as(MONITOR):
            [found], _ = label_objects(client("s3"), bucket=settings.bucket, prefix=settings.labels_prefix)
            assert found.key == key
            assert read_label_object(client("s3"), bucket=settings.bucket, item=found).startswith(b"record_id")
        call_log = stack.call_log_path
    # AND every call each component made is allowed by its exact policy, conditions and ARNs included
    log = read_call_log(call_log)
    made = operations_by_principal(log)
    assert {"s3:GetObject", "kinesis:PutRecords", "s3:CopyObject", "s3:ListObjectsV2"} <= made[PRODUCER]
    assert {"sqs:ReceiveMessage", "sqs:DeleteMessage"} <= made[PRODUCER]  # the event source mapping, as the role
    # (its own DescribeStreamSummary is made once per warm container, so an earlier stack of this process may have)
    assert {"kinesis:GetRecords", "kinesis:GetShardIterator"} <= made[STREAM_SCORER]
    assert {"s3:ListObjectsV2", "s3:HeadObject", "s3:GetObject"} <= made[MONITOR]
    refused_on_purpose = {
        (PRODUCER, "s3", "PutObject"),
        (MONITOR, "kinesis", "PutRecords"),
        (PRODUCER, "secretsmanager", "GetSecretValue"),
    }
    found = denials(log, region=get_settings().aws_region, account=LOCAL_ACCOUNT)
    assert {(d.principal, d.service, d.operation) for d in found} == refused_on_purpose


def test_the_call_check_denies_a_call_whose_statement_is_removed(deployed_stack) -> None:  # type: ignore[no-untyped-def]
    # GIVEN the calls of a stack run (the emulator cannot check the producer's prefix conditions)
    with running(deployed_stack()) as stack:
        version = upload(SAMPLE, name="listing.csv")
        wait_for_manifest(version, timeout=WAIT_SECONDS)
        call_log = stack.call_log_path
    log = read_call_log(call_log)
    # WHEN the producer's policy loses the statement that lets it list the manifests
    edited = without_statement(PRODUCER, "ListManifests")(log.policies)
    found = denials(
        type(log)(policies=edited, calls=log.calls), region=get_settings().aws_region, account=LOCAL_ACCOUNT
    )
    # THEN exactly its listings of the manifests are denied
    assert {(d.principal, d.permission.action) for d in found} == {(PRODUCER, "s3:ListBucket")}


def test_without_the_statement_it_needs_the_producer_cannot_stream_a_file(deployed_stack) -> None:  # type: ignore[no-untyped-def]
    # GIVEN the producer deployed without its PutRecords statement
    with running(deployed_stack(edit_policies=without_statement(PRODUCER, "PutRecords"))):
        # WHEN a file is dropped
        version = upload(SAMPLE, name="denied.csv")
        # THEN each delivery of its event fails, until the event is dead-lettered
        dead_letters = client("sqs").get_queue_url(QueueName=FILE_DROPS_DLQ)["QueueUrl"]
        deadline = time.monotonic() + WAIT_SECONDS
        while not (parked := client("sqs").receive_message(QueueUrl=dead_letters).get("Messages")):
            assert time.monotonic() < deadline, "the refused file's event was never dead-lettered"
        assert version.etag in parked[0]["Body"]
        # AND nothing of it reached the stream or the database, and it has no manifest
        assert manifest_of(version) is None
        assert stored_rows(version.source_id) == 0
        shards = client("kinesis").list_shards(StreamName=get_settings().stream_name)["Shards"]
        kinesis = client("kinesis")
        records = 0
        for shard in shards:
            iterator = kinesis.get_shard_iterator(
                StreamName=get_settings().stream_name, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]
            records += len(kinesis.get_records(ShardIterator=iterator)["Records"])
        assert records == 0
