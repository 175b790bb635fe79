"""The producer works under the IAM the Terraform grants it, and the grant holds nothing it does not use.

Every AWS call the producer makes in the cases below (a drop with rejects, two uploads to one key, a
redelivery, an unreadable name, a truncated gzip, a file streamed in segments with a redelivered
continuation) is recorded on the emulator, mapped to the IAM permissions AWS checks, and evaluated against
``data.aws_iam_policy_document.producer`` rendered with the local ARNs, conditions included.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from typing import Any

import pytest

from churn_common.aws import client
from churn_common.settings import get_settings
from infra.local.policy_documents import local_references, render_policy
from producer.file_processor import _SHARD_MAPS
from producer.handler import lambda_handler as producer_handler
from tests.iam_policy import CallRecorder, Permission, is_allowed, required_permissions
from tests.integration.producer.conftest import Drops
from tests.integration.producer.test_segmented_files import SEGMENTED_ROWS, ShortLivedContext, big_file, drain

pytestmark = pytest.mark.integration

REGION, ACCOUNT = "us-east-1", "123456789012"
BAD_ROW = b"8,0,38,0,4370,71,5,17,7,1,1,30,197.64,0"
# Granted but not called by the producer's code here, each for a reason:
NOT_CALLED_BY_THE_CODE = {
    # the event source mapping polls the queue with the function's role
    "sqs:ReceiveMessage": "event source mapping",
    "sqs:DeleteMessage": "event source mapping",
    "sqs:GetQueueAttributes": "event source mapping",
    # SSE-KMS of the bucket, stream and queue: AWS calls KMS on the producer's behalf
    "kms:Decrypt": "SSE-KMS",
    "kms:GenerateDataKey": "SSE-KMS",
    # multipart uploads of large rejects files that fail part way are aborted by boto3
    "s3:AbortMultipartUpload": "failed multipart upload of a rejects file",
    # a bucket without versioning: conditional delete and tag copy of the current object
    "s3:DeleteObject": "buckets without versioning",
    "s3:GetObjectTagging": "buckets without versioning",
}


@pytest.fixture
def recorded(aws) -> Iterator[CallRecorder]:  # type: ignore[no-untyped-def]
    recorder = CallRecorder()
    _SHARD_MAPS.clear()  # a cold container: the shard map is read again (kinesis:ListShards)
    clients = [client(name) for name in ("s3", "kinesis", "sqs")]
    for each in clients:
        recorder.attach(each)
    yield recorder
    for each in clients:
        recorder.detach(each)


def run_every_case(drops: Drops, customer_csv: bytes, recorder: CallRecorder) -> None:
    """Each drop handled with the recorder on (the test's own uploads and receives are not recorded)."""

    def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        with recorder.recording():
            return producer_handler(event, context)

    with_bad_row = customer_csv.rstrip(b"\n") + b"\n" + BAD_ROW + b"\n"
    drops.put("plain.csv", with_bad_row)
    event = drops.event()
    lambda_handler(event, None)
    lambda_handler(event, None)  # redelivered
    drops.put("same-key.csv", customer_csv)
    drops.put("same-key.csv", with_bad_row)
    lambda_handler(drops.event(expected=2, include_test_event=False), None)
    drops.put("sheet.xlsx", b"PK\x03\x04")
    lambda_handler(drops.event(include_test_event=False), None)
    cut = gzip.compress(with_bad_row * 3)
    drops.put("cut.csv.gz", cut[: len(cut) // 2])
    lambda_handler(drops.event(include_test_event=False), None)
    data, _ = big_file(customer_csv, at_least=SEGMENTED_ROWS // 2)
    drops.put("long.csv", data)
    lambda_handler(drops.event(include_test_event=False), ShortLivedContext(looks=3))
    (continuation,) = drops.messages(expected=1, include_test_event=False, rounds=2)
    lambda_handler(drops.event_of([continuation]), ShortLivedContext(looks=3))
    drain(drops, drops.event_of([continuation]), looks=10**9, handler=lambda_handler)


def permissions_of(recorder: CallRecorder) -> list[Permission]:
    return [
        permission
        for service, operation, params in recorder.calls
        for permission in required_permissions(service, operation, params, region=REGION, account=ACCOUNT)
    ]


def test_every_call_of_the_producer_is_allowed_by_its_deployed_policy_and_every_grant_is_used(
    drops: Drops, customer_csv: bytes, recorded: CallRecorder
) -> None:
    # GIVEN the producer's policy as Terraform renders it for the local resources
    policy = render_policy("producer", local_references(drops.resources, database_secret_arn=None, region=REGION))
    # WHEN the producer handles every kind of drop, recorded call by call
    run_every_case(drops, customer_csv, recorded)
    # THEN each call is allowed, with its conditions
    permissions = permissions_of(recorded)
    assert len(permissions) > 50
    denied = sorted({p for p in permissions if not is_allowed(policy, p)}, key=str)
    assert denied == []
    # AND each granted action is called, or granted for a stated reason
    granted = {action for statement in policy["Statement"] for action in statement["Action"]}
    called = {p.action for p in permissions}
    assert granted - called - set(NOT_CALLED_BY_THE_CODE) == set()


def test_the_check_fails_when_a_needed_statement_is_missing(
    drops: Drops, customer_csv: bytes, recorded: CallRecorder
) -> None:
    # GIVEN the producer's policy without the statement that lets it list the manifests
    policy = render_policy("producer", local_references(drops.resources, database_secret_arn=None, region=REGION))
    policy["Statement"] = [s for s in policy["Statement"] if s["Sid"] != "ListManifests"]
    # WHEN the producer handles the same drops
    run_every_case(drops, customer_csv, recorded)
    # THEN its listing of the manifests is denied, and nothing else is
    denied = {p.action for p in permissions_of(recorded) if not is_allowed(policy, p)}
    assert denied == {"s3:ListBucket"}


def test_a_listing_outside_the_granted_prefix_is_denied_by_the_condition(drops: Drops) -> None:
    policy = render_policy("producer", local_references(drops.resources, database_secret_arn=None, region=REGION))
    bucket = f"arn:aws:s3:::{get_settings().bucket}"
    assert is_allowed(policy, Permission("s3:ListBucket", bucket, (("s3:prefix", "data/manifests/abc/"),)))
    assert not is_allowed(policy, Permission("s3:ListBucket", bucket, (("s3:prefix", "data/input/"),)))
    assert not is_allowed(policy, Permission("s3:ListBucket", bucket))  # no prefix: the condition cannot hold
    assert not is_allowed(policy, Permission("s3:GetObject", f"{bucket}/reports/w.html"))
