"""The events that announce a dropped object, in each shape AWS delivers them to the producer.

S3 announces a created object either as an S3 event notification (to SQS, SNS or Lambda directly) or as an
EventBridge "Object Created" event (to SQS or Lambda directly); SNS wraps what it forwards in an envelope
unless raw message delivery is on. Every shape is recognised by the fields AWS uses to tell them apart and
parsed by a model of its own, from one table per place it can arrive: an SQS message body
(:data:`BODY_SHAPES`) or the Lambda event itself (:data:`DIRECT_SHAPES`).

Keys of S3 event notifications arrive URL-encoded (``/`` included, spaces as ``+``) and are decoded here
once; EventBridge keys arrive as they are, and decoding them would corrupt a key holding ``+`` or ``%``.
The ``s3:TestEvent`` that S3 sends when notifications are configured names no object.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, TypeVar
from urllib.parse import unquote_plus

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from churn_common.errors import PermanentError
from churn_common.event_description import describe, first_error, shown

OBJECT_CREATED_PREFIX = "ObjectCreated:"
EVENTBRIDGE_OBJECT_CREATED = "Object Created"
TEST_EVENT = "s3:TestEvent"

M = TypeVar("M", bound=BaseModel)


class NotificationError(PermanentError, ValueError):
    """A payload that can never name an object: not a shape the producer knows, or a known shape with
    invalid content. Permanent: the same payload fails the same way on every retry."""

    def __init__(self, *, expected: str, arrived: str, problem: str) -> None:
        super().__init__(f"{problem}: expected {expected}; arrived {arrived}")
        self.expected, self.arrived, self.problem = expected, arrived, problem


class _AwsModel(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class S3Bucket(_AwsModel):
    name: str


class S3Object(_AwsModel):
    key: str
    size: int | None = None
    e_tag: str | None = Field(None, alias="eTag")
    version_id: str | None = Field(None, alias="versionId")
    sequencer: str | None = None

    @field_validator("key")
    @classmethod
    def _decoded(cls, value: str) -> str:
        return unquote_plus(value)


class S3Entity(_AwsModel):
    bucket: S3Bucket
    object_: S3Object = Field(alias="object")


class S3EventRecord(_AwsModel):
    event_source: Literal["aws:s3"] = Field(alias="eventSource")
    event_name: str = Field(alias="eventName")
    event_time: datetime = Field(alias="eventTime")
    s3: S3Entity


class S3Event(_AwsModel):
    records: list[S3EventRecord] = Field(alias="Records")


class SnsEnvelope(_AwsModel):
    type_: Literal["Notification"] = Field(alias="Type")
    message_id: str = Field(alias="MessageId")
    topic_arn: str = Field(alias="TopicArn")
    message: str = Field(alias="Message")


class EventBridgeObject(_AwsModel):
    key: str
    size: int | None = None
    etag: str | None = None
    version_id: str | None = Field(None, alias="version-id")
    sequencer: str | None = None


class EventBridgeDetail(_AwsModel):
    bucket: S3Bucket
    object_: EventBridgeObject = Field(alias="object")
    reason: str | None = None


class EventBridgeS3Event(_AwsModel):
    source: Literal["aws.s3"]
    detail_type: str = Field(alias="detail-type")
    detail: EventBridgeDetail


class SqsRecord(_AwsModel):
    message_id: str = Field(alias="messageId")
    receipt_handle: str = Field(alias="receiptHandle")
    body: str
    attributes: dict[str, Any] = Field(default_factory=dict)
    event_source: Literal["aws:sqs"] = Field(alias="eventSource")
    event_source_arn: str = Field(alias="eventSourceARN")


class SqsEvent(_AwsModel):
    records: list[SqsRecord] = Field(alias="Records")


@dataclass(frozen=True, slots=True)
class ObjectRef:
    """One created object version to process, as the event named it."""

    bucket: str
    key: str
    event_name: str
    etag: str | None = None
    size: int | None = None
    version_id: str | None = None
    sequencer: str | None = None

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


@dataclass(frozen=True, slots=True)
class Shape:
    """One event shape: what it is called, the fields that tell it apart, and how its objects are read."""

    name: str
    signature: str
    recognise: Callable[[dict[str, Any]], bool]
    parse: Callable[[dict[str, Any]], list[ObjectRef]]


def _record_sources(payload: dict[str, Any], field: str = "eventSource") -> set[Any] | None:
    records = payload.get("Records")
    if not isinstance(records, list) or not records:
        return None
    return {record.get(field) if isinstance(record, dict) else None for record in records}


def _is_test_event(payload: dict[str, Any]) -> bool:
    return payload.get("Event") == TEST_EVENT


def _is_s3_notification(payload: dict[str, Any]) -> bool:
    return _record_sources(payload) == {"aws:s3"}


def _is_sns_envelope(payload: dict[str, Any]) -> bool:
    return payload.get("Type") == "Notification"


def _is_eventbridge_s3(payload: dict[str, Any]) -> bool:
    return payload.get("source") == "aws.s3"


def is_sqs_event(event: Any) -> bool:
    return isinstance(event, dict) and _record_sources(event) == {"aws:sqs"}


def validated(model: type[M], payload: dict[str, Any], shape: str) -> M:
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        raise NotificationError(
            expected=f"a valid {shape}", arrived=describe(payload), problem=f"invalid {shape} ({first_error(exc)})"
        ) from None


def _dedup(refs: list[ObjectRef]) -> list[ObjectRef]:
    """Each object version once: a multipart upload, for one, is announced by two records."""
    unique: dict[tuple[str, str, str | None, str | None], ObjectRef] = {}
    for ref in refs:
        unique.setdefault((ref.bucket, ref.key, ref.version_id, ref.etag), ref)
    return list(unique.values())


def _no_objects(payload: dict[str, Any]) -> list[ObjectRef]:
    return []


def _s3_notification_refs(payload: dict[str, Any]) -> list[ObjectRef]:
    notification = validated(S3Event, payload, "S3 event notification")
    return [
        ObjectRef(
            bucket=record.s3.bucket.name,
            key=record.s3.object_.key,
            event_name=record.event_name,
            etag=record.s3.object_.e_tag,
            size=record.s3.object_.size,
            version_id=record.s3.object_.version_id,
            sequencer=record.s3.object_.sequencer,
        )
        for record in notification.records
        if record.event_name.startswith(OBJECT_CREATED_PREFIX)
    ]


def _eventbridge_refs(payload: dict[str, Any]) -> list[ObjectRef]:
    event = validated(EventBridgeS3Event, payload, "EventBridge S3 event")
    if event.detail_type != EVENTBRIDGE_OBJECT_CREATED:
        return []
    obj, reason = event.detail.object_, event.detail.reason
    return [
        ObjectRef(
            bucket=event.detail.bucket.name,
            key=obj.key,
            event_name=f"{event.detail_type}:{reason}" if reason else event.detail_type,
            etag=obj.etag,
            size=obj.size,
            version_id=obj.version_id,
            sequencer=obj.sequencer,
        )
    ]


def _sns_refs(payload: dict[str, Any]) -> list[ObjectRef]:
    envelope = validated(SnsEnvelope, payload, "SNS notification envelope")
    try:
        return refs_in_text(envelope.message, SNS_MESSAGE_SHAPES)
    except NotificationError as exc:
        arrived = f"an SNS notification from {envelope.topic_arn} whose Message is {exc.arrived}"
        raise NotificationError(expected=exc.expected, arrived=arrived, problem=exc.problem) from None


TEST_EVENT_SHAPE = Shape("S3 test event", f"Event == {TEST_EVENT}", _is_test_event, _no_objects)
S3_NOTIFICATION_SHAPE = Shape(
    "S3 event notification", "Records[].eventSource == aws:s3", _is_s3_notification, _s3_notification_refs
)
EVENTBRIDGE_SHAPE = Shape(
    "EventBridge S3 event", "source == aws.s3, detail-type Object Created", _is_eventbridge_s3, _eventbridge_refs
)
SNS_ENVELOPE_SHAPE = Shape(
    "SNS notification envelope", "Type == Notification, Message holding one of the above", _is_sns_envelope, _sns_refs
)

# Shapes that SNS forwards; an envelope inside an envelope is not one of them.
SNS_MESSAGE_SHAPES: tuple[Shape, ...] = (TEST_EVENT_SHAPE, S3_NOTIFICATION_SHAPE, EVENTBRIDGE_SHAPE)
BODY_SHAPES: tuple[Shape, ...] = (*SNS_MESSAGE_SHAPES, SNS_ENVELOPE_SHAPE)
DIRECT_SHAPES: tuple[Shape, ...] = (TEST_EVENT_SHAPE, S3_NOTIFICATION_SHAPE, EVENTBRIDGE_SHAPE)


def expected(shapes: Sequence[Shape]) -> str:
    return "one of [" + "; ".join(f"{shape.name} ({shape.signature})" for shape in shapes) + "]"


def refs_in(payload: Any, shapes: Sequence[Shape]) -> list[ObjectRef]:
    """The created objects ``payload`` names, each version once; ``[]`` when it names none (a test event)."""
    if isinstance(payload, dict):
        shape = next((shape for shape in shapes if shape.recognise(payload)), None)
        if shape is not None:
            return _dedup(shape.parse(payload))
    raise NotificationError(expected=expected(shapes), arrived=describe(payload), problem="unknown event shape")


def refs_in_text(text: str, shapes: Sequence[Shape]) -> list[ObjectRef]:
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as exc:
        raise NotificationError(
            expected=expected(shapes), arrived=f"text {shown(text)}", problem=f"not JSON ({exc})"
        ) from None
    return refs_in(payload, shapes)


def parse_notification(body: str) -> list[ObjectRef]:
    """The created objects an SQS message body names (S3 notification, SNS envelope or EventBridge event)."""
    return refs_in_text(body, BODY_SHAPES)


def parse_event(event: Any) -> list[ObjectRef]:
    """The created objects an event names that S3 or EventBridge delivered to the Lambda directly."""
    return refs_in(event, DIRECT_SHAPES)
