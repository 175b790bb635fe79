"""The events Lambda builds from what ReceiveMessage and GetRecords return, and the record it sends to an
on-failure destination; ``tests/unit/infra/test_event_builders_match_aws.py`` checks them against AWS."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime
from typing import Any

LOCAL_ACCOUNT_ID = "000000000000"
# The conditions under which a Kinesis mapping discards records (``requestContext.condition``).
RETRIES_EXHAUSTED = "RetryAttemptsExhausted"
AGE_EXCEEDED = "RecordAgeExceeded"


def _aws_time(moment: datetime) -> str:
    """A timestamp as AWS writes it in invocation records: UTC, milliseconds, ``Z``."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def local_function_arn(function_name: str, *, region: str) -> str:
    """The function's ARN, in the account the emulator uses."""
    return f"arn:aws:lambda:{region}:{LOCAL_ACCOUNT_ID}:function:{function_name}"


def _lambda_message_attribute(value: dict[str, Any]) -> dict[str, Any]:
    """A message attribute as Lambda delivers it: camel-case keys, binary values as base64 text, list slots."""
    binary = value.get("BinaryValue")
    return {
        **({"stringValue": value["StringValue"]} if "StringValue" in value else {}),
        **({"binaryValue": base64.b64encode(binary).decode("ascii")} if binary is not None else {}),
        "stringListValues": list(value.get("StringListValues", [])),
        "binaryListValues": [base64.b64encode(item).decode("ascii") for item in value.get("BinaryListValues", [])],
        "dataType": value["DataType"],
    }


def _sqs_record(m: dict[str, Any], *, queue_arn: str, region: str) -> dict[str, Any]:
    attributes = m.get("MessageAttributes", {})
    return {
        "messageId": m["MessageId"],
        "receiptHandle": m["ReceiptHandle"],
        "body": m["Body"],
        "attributes": m.get("Attributes", {}),
        "messageAttributes": {name: _lambda_message_attribute(value) for name, value in attributes.items()},
        **({"md5OfMessageAttributes": m["MD5OfMessageAttributes"]} if "MD5OfMessageAttributes" in m else {}),
        "md5OfBody": m["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


def sqs_event(messages: list[dict[str, Any]], *, queue_arn: str, region: str) -> dict[str, Any]:
    """The ``aws:sqs`` event Lambda builds from received messages."""
    return {"Records": [_sqs_record(m, queue_arn=queue_arn, region=region) for m in messages]}


def kinesis_event_record(
    record: dict[str, Any], *, shard_id: str, stream_arn: str, function_name: str, region: str
) -> dict[str, Any]:
    """One GetRecords record as Lambda hands it to the function (``Records[i]`` of a Kinesis event)."""
    return {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": record["PartitionKey"],
            "sequenceNumber": record["SequenceNumber"],
            "data": base64.b64encode(record["Data"]).decode(),
            "approximateArrivalTimestamp": record["ApproximateArrivalTimestamp"].timestamp(),
        },
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": f"{shard_id}:{record['SequenceNumber']}",
        "eventName": "aws:kinesis:record",
        "invokeIdentityArn": f"arn:aws:iam::{LOCAL_ACCOUNT_ID}:role/{function_name}",
        "awsRegion": region,
        "eventSourceARN": stream_arn,
    }


def failure_record(
    first: dict[str, Any],
    last: dict[str, Any],
    *,
    batch_size: int,
    shard_id: str,
    stream_arn: str,
    function_arn: str,
    condition: str,
    invocations: int,
    function_error: bool,
    at: datetime,
) -> dict[str, Any]:
    """The invocation record Lambda sends to a Kinesis mapping's on-failure destination: metadata
    describing the discarded records (their shard and sequence range), not the records themselves."""
    response_context: dict[str, Any] = {"statusCode": 200, "executedVersion": "$LATEST"}
    if function_error:
        response_context["functionError"] = "Unhandled"
    return {
        "requestContext": {
            "requestId": str(uuid.uuid4()),
            "functionArn": function_arn,
            "condition": condition,
            "approximateInvokeCount": invocations,
        },
        "responseContext": response_context,
        "version": "1.0",
        "timestamp": _aws_time(at),
        "KinesisBatchInfo": {
            "shardId": shard_id,
            "startSequenceNumber": first["SequenceNumber"],
            "endSequenceNumber": last["SequenceNumber"],
            "approximateArrivalOfFirstRecord": _aws_time(first["ApproximateArrivalTimestamp"]),
            "approximateArrivalOfLastRecord": _aws_time(last["ApproximateArrivalTimestamp"]),
            "batchSize": batch_size,
            "streamArn": stream_arn,
        },
    }
