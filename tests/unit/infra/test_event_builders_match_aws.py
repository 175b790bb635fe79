"""The local Lambda stand-in's event builders against AWS's recorded events (``tests/events/``).

The stand-in (``infra.local.lambda_service``) turns what ReceiveMessage and GetRecords return into the events
it hands the handlers. Each builder is fed the API form of a recorded AWS record and must give back the same
structure AWS delivers: the same keys at every level, with values of the same JSON types. The tests' own
builders (``tests.aws_events``) are held to the same recordings.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from infra.local.lambda_service import kinesis_event_record
from infra.local.lambda_service import sqs_event as stand_in_sqs_event
from tests.aws_events import sqs_event as recorded_sqs_event
from tests.events import load_event

SqsBuilder = Callable[..., dict[str, Any]]


def shape(value: Any) -> Any:
    """The structure of a JSON value: dicts keep their keys, everything else becomes its JSON type."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return "array"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


@pytest.fixture
def received_sqs_message() -> Callable[[dict[str, Any]], dict[str, Any]]:
    """A factory: the message as ReceiveMessage (AttributeNames/MessageAttributeNames=All) returns it, for a
    recorded Lambda SQS record."""

    def build(record: dict[str, Any]) -> dict[str, Any]:
        message: dict[str, Any] = {
            "MessageId": record["messageId"],
            "ReceiptHandle": record["receiptHandle"],
            "MD5OfBody": record["md5OfBody"],
            "Body": record["body"],
            "Attributes": dict(record["attributes"]),
        }
        if record["messageAttributes"]:
            message["MD5OfMessageAttributes"] = record["md5OfMessageAttributes"]
            message["MessageAttributes"] = {
                name: {
                    **({"StringValue": a["stringValue"]} if "stringValue" in a else {}),
                    **({"BinaryValue": base64.b64decode(a["binaryValue"])} if "binaryValue" in a else {}),
                    "DataType": a["dataType"],
                }
                for name, a in record["messageAttributes"].items()
            }
        return message

    return build


@pytest.fixture
def kinesis_get_records_record() -> Callable[[dict[str, Any]], dict[str, Any]]:
    """A factory: the record as boto3's GetRecords returns it, for a recorded Lambda Kinesis record."""

    def build(record: dict[str, Any]) -> dict[str, Any]:
        kinesis = record["kinesis"]
        return {
            "SequenceNumber": kinesis["sequenceNumber"],
            "ApproximateArrivalTimestamp": datetime.fromtimestamp(kinesis["approximateArrivalTimestamp"], tz=UTC),
            "Data": base64.b64decode(kinesis["data"]),
            "PartitionKey": kinesis["partitionKey"],
            "EncryptionType": "NONE",
        }

    return build


def stand_in(messages: list[dict[str, Any]], *, queue_arn: str, region: str) -> dict[str, Any]:
    return stand_in_sqs_event(messages, queue_arn=queue_arn, region=region)


@pytest.mark.parametrize(
    "recorded_name",
    [
        pytest.param("s3_sqs_event", id="s3-notification"),
        pytest.param("sqs_event", id="plain-message"),
        pytest.param("sqs_message_attributes_event", id="message-attributes"),
    ],
)
@pytest.mark.parametrize(
    "build",
    [
        pytest.param(stand_in, id="stand-in"),
        pytest.param(recorded_sqs_event, id="tests-builder"),
    ],
)
def test_sqs_events_have_the_structure_aws_delivers(
    recorded_name: str,
    build: SqsBuilder,
    received_sqs_message: Callable[[dict[str, Any]], dict[str, Any]],
) -> None:
    # GIVEN an SQS event recorded on AWS, and each of its messages as ReceiveMessage returned it
    recorded = load_event(recorded_name)
    record = recorded["Records"][-1] if recorded_name == "sqs_event" else recorded["Records"][0]
    message = received_sqs_message(record)
    # WHEN the event is built from the received message
    built = build([message], queue_arn=record["eventSourceARN"], region=record["awsRegion"])
    # THEN it has the keys AWS sends at every level, with values of the same JSON types
    assert set(built) == set(recorded)
    assert shape(built["Records"][0]) == shape(record)


def test_kinesis_records_have_the_structure_aws_delivers(
    kinesis_get_records_record: Callable[[dict[str, Any]], dict[str, Any]],
) -> None:
    # GIVEN the Kinesis event recorded on AWS, and its records as GetRecords returned them
    recorded = load_event("kinesis_stream_event")
    for record in recorded["Records"]:
        shard_id = record["eventID"].split(":")[0]
        # WHEN the stand-in builds the event record from the GetRecords record
        built = kinesis_event_record(
            kinesis_get_records_record(record),
            shard_id=shard_id,
            stream_arn=record["eventSourceARN"],
            function_name="lambda-role",
            region=record["awsRegion"],
        )
        # THEN it has the keys AWS sends at every level, with values of the same JSON types
        assert shape(built) == shape(record)
        # AND the fields taken from the record carry the recorded values
        assert built["kinesis"] == record["kinesis"]
        assert built["eventID"] == record["eventID"]
