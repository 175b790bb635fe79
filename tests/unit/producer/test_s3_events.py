"""Parsing the SQS-wrapped S3 notifications exactly as they arrive: every event and message body is built
from AWS's recorded events in ``tests/events/`` (via ``tests.aws_events``), with only the fields a test is
about filled in.

The other shapes (SNS envelopes, EventBridge, direct invocations) are covered with AWS's recorded events
in ``test_event_shapes.py``."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from pydantic import ValidationError

from producer.s3_events import NotificationError, SqsEvent, parse_notification
from tests.aws_events import sqs_event as lambda_sqs_event
from tests.events import load_event

QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:file-drops"
BUCKET = "churn-pipeline-data"
# The S3 test event S3 sends when notifications are configured, as its SQS message body.
TEST_EVENT_BODY: str = load_event("s3_test_event_sqs")["Records"][0]["body"]


def s3_record(
    key: str, *, event_name: str = "ObjectCreated:Put", etag: str = "e5eb", size: int = 8, version: str | None = None
) -> dict[str, Any]:
    """One record of an S3 event notification: AWS's recorded record, naming this object of ``BUCKET``."""
    record: dict[str, Any] = load_event("s3_event")["Records"][0]
    record["eventName"] = event_name
    record["s3"]["bucket"].update(name=BUCKET, arn=f"arn:aws:s3:::{BUCKET}")
    obj = {"key": key, "size": size, "eTag": etag, "sequencer": "0A1B"}
    record["s3"]["object"] = obj if version is None else {**obj, "versionId": version}
    return record


def sqs_event(*bodies: str) -> dict[str, Any]:
    """The ``aws:sqs`` event Lambda delivers for messages with these bodies (recorded record layout)."""
    messages = [
        {
            "MessageId": f"m-{i}",
            "ReceiptHandle": f"rh-{i}",
            "Body": body,
            "MD5OfBody": hashlib.md5(body.encode(), usedforsecurity=False).hexdigest(),
        }
        for i, body in enumerate(bodies)
    ]
    return lambda_sqs_event(messages, queue_arn=QUEUE_ARN)


def test_url_encoded_keys_are_decoded_slashes_spaces_and_plus_signs() -> None:
    # GIVEN the key of "data/input/my file+x.csv" as S3 sends it
    body = json.dumps({"Records": [s3_record("data%2Finput%2Fmy+file%2Bx.csv")]})
    # WHEN parsed THEN the key is the real object key
    (ref,) = parse_notification(body)
    assert ref.key == "data/input/my file+x.csv"
    assert ref.uri == f"s3://{BUCKET}/data/input/my file+x.csv"
    assert (ref.etag, ref.size, ref.event_name) == ("e5eb", 8, "ObjectCreated:Put")
    assert (ref.version_id, ref.sequencer) == (None, "0A1B")


def test_test_event_names_no_object() -> None:
    assert parse_notification(TEST_EVENT_BODY) == []


def test_the_same_object_twice_in_one_message_is_processed_once() -> None:
    # GIVEN a multipart upload's Put and CompleteMultipartUpload records for one object version
    body = json.dumps(
        {
            "Records": [
                s3_record("data/input/f.csv"),
                s3_record("data/input/f.csv", event_name="ObjectCreated:CompleteMultipartUpload"),
            ]
        }
    )
    # THEN one object to process
    assert [r.key for r in parse_notification(body)] == ["data/input/f.csv"]


def test_each_version_of_a_key_is_its_own_object_and_each_version_counts_once() -> None:
    # GIVEN a versioned bucket: two uploads under one key with the same content, one of them announced twice
    body = json.dumps(
        {
            "Records": [
                s3_record("data/input/f.csv", version="v1"),
                s3_record("data/input/f.csv", version="v2"),
                s3_record("data/input/f.csv", version="v1", event_name="ObjectCreated:CompleteMultipartUpload"),
            ]
        }
    )
    # THEN each version is one object to process, in the order announced
    assert [(r.key, r.version_id) for r in parse_notification(body)] == [
        ("data/input/f.csv", "v1"),
        ("data/input/f.csv", "v2"),
    ]


def test_only_created_objects_are_returned() -> None:
    body = json.dumps(
        {"Records": [s3_record("data/input/a.csv", event_name="ObjectRemoved:Delete"), s3_record("data/input/b.csv")]}
    )
    assert [r.key for r in parse_notification(body)] == ["data/input/b.csv"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param("not json", r"not JSON .* arrived text 'not json'", id="not-json"),
        pytest.param('{"hello": 1}', r"unknown event shape: .* arrived keys \['hello'\]", id="other-json"),
        pytest.param(
            json.dumps({"Records": [{**s3_record("k"), "eventSource": "aws:sns"}]}),
            r"unknown event shape: .*Records\[\]\.eventSource \['aws:sns'\]",
            id="not-s3",
        ),
        pytest.param(
            json.dumps({"Records": [{**s3_record("k"), "s3": {"object": {"key": "k"}}}]}),
            r"invalid S3 event notification \(Records\.0\.s3\.bucket: Field required\)",
            id="s3-without-bucket",
        ),
    ],
)
def test_bodies_that_are_not_s3_notifications_raise(body: str, message: str) -> None:
    with pytest.raises(NotificationError, match=message):
        parse_notification(body)


def test_sqs_event_is_validated_with_aws_field_names() -> None:
    # GIVEN an event as Lambda delivers it
    event = SqsEvent.model_validate(sqs_event(TEST_EVENT_BODY, "{}"))
    # THEN the records keep their ids and bodies
    assert [r.message_id for r in event.records] == ["m-0", "m-1"]
    assert event.records[0].event_source_arn == QUEUE_ARN
    # AND an event from another source is refused
    other = sqs_event("{}")
    other["Records"][0]["eventSource"] = "aws:kinesis"
    with pytest.raises(ValidationError):
        SqsEvent.model_validate(other)
