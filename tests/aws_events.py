"""Lambda events built from AWS's recorded samples in ``tests/events/``, not from the code under test.

Each builder starts from a recorded record (every field AWS sends, in AWS's layout) and fills in only what
a test needs: message ids, receipt handles, bodies, sequence numbers. The local Lambda stand-in's own
builders (``infra.local.lambda_service``) are checked against the same recordings in
``tests/unit/infra/test_event_builders_match_aws.py``.
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

from tests.events import load_event

SQS_TEMPLATE = "s3_sqs_event"  # S3 -> SQS -> Lambda, recorded on AWS
KINESIS_TEMPLATE = "kinesis_stream_event"


@cache
def _recorded_record(name: str) -> dict[str, Any]:
    record: dict[str, Any] = load_event(name)["Records"][0]
    return record


def _template_record(name: str) -> dict[str, Any]:
    """A fresh copy of the first record of the recorded event ``name`` (read from disk once)."""
    return copy.deepcopy(_recorded_record(name))


def _lambda_message_attribute(value: Mapping[str, Any]) -> dict[str, Any]:
    """One message attribute as Lambda spells it (camelCase, list fields always present, binary base64)."""
    attribute: dict[str, Any] = {}
    if "StringValue" in value:
        attribute["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        attribute["binaryValue"] = base64.b64encode(value["BinaryValue"]).decode()
    attribute["stringListValues"] = list(value.get("StringListValues", []))
    attribute["binaryListValues"] = [base64.b64encode(b).decode() for b in value.get("BinaryListValues", [])]
    attribute["dataType"] = value["DataType"]
    return attribute


def sqs_record(
    *,
    message_id: str,
    receipt_handle: str,
    body: str,
    md5_of_body: str,
    queue_arn: str,
    region: str = "us-east-1",
    attributes: Mapping[str, str] | None = None,
    message_attributes: Mapping[str, Mapping[str, Any]] | None = None,
    md5_of_message_attributes: str | None = None,
) -> dict[str, Any]:
    """One ``Records[i]`` of an ``aws:sqs`` event: the recorded record with these fields filled in.

    ``attributes`` override the recorded system attributes (those not given keep their recorded values);
    ``message_attributes`` are given as ReceiveMessage returns them and laid out as Lambda delivers them.
    """
    record = _template_record(SQS_TEMPLATE)
    record.update(
        messageId=message_id,
        receiptHandle=receipt_handle,
        body=body,
        md5OfBody=md5_of_body,
        eventSourceARN=queue_arn,
        awsRegion=region,
    )
    record["attributes"].update(attributes or {})
    record["messageAttributes"] = {
        name: _lambda_message_attribute(value) for name, value in (message_attributes or {}).items()
    }
    if md5_of_message_attributes is not None:
        record["md5OfMessageAttributes"] = md5_of_message_attributes
    return record


def sqs_event(messages: Sequence[Mapping[str, Any]], *, queue_arn: str, region: str = "us-east-1") -> dict[str, Any]:
    """The ``aws:sqs`` event Lambda delivers for messages as ``ReceiveMessage`` returned them."""
    return {
        "Records": [
            sqs_record(
                message_id=m["MessageId"],
                receipt_handle=m["ReceiptHandle"],
                body=m["Body"],
                md5_of_body=m["MD5OfBody"],
                queue_arn=queue_arn,
                region=region,
                attributes=m.get("Attributes"),
                message_attributes=m.get("MessageAttributes"),
                md5_of_message_attributes=m.get("MD5OfMessageAttributes"),
            )
            for m in messages
        ]
    }


def kinesis_record(
    data: bytes,
    *,
    partition_key: str,
    sequence_number: str,
    shard_id: str,
    stream_arn: str,
    arrival: float,
    region: str = "us-east-1",
    role_arn: str = "arn:aws:iam::123456789012:role/stream-scorer",
) -> dict[str, Any]:
    """One ``Records[i]`` of an ``aws:kinesis`` event: the recorded record with these fields filled in."""
    record = _template_record(KINESIS_TEMPLATE)
    record["kinesis"].update(
        partitionKey=partition_key,
        sequenceNumber=sequence_number,
        data=base64.b64encode(data).decode(),
        approximateArrivalTimestamp=arrival,
    )
    record.update(
        eventID=f"{shard_id}:{sequence_number}",
        invokeIdentityArn=role_arn,
        awsRegion=region,
        eventSourceARN=stream_arn,
    )
    return record
