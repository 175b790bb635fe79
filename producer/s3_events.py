"""The event the producer receives: SQS records whose bodies are S3 event notifications.

Field names are AWS's. Object keys arrive URL-encoded (``/`` included, spaces as ``+``) and are decoded
here once. The ``s3:TestEvent`` that S3 sends when notifications are configured names no object.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from urllib.parse import unquote_plus

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

OBJECT_CREATED_PREFIX = "ObjectCreated:"
TEST_EVENT = "s3:TestEvent"


class NotificationError(ValueError):
    """An SQS body that is neither an S3 event nor an S3 test event."""


class _AwsModel(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class S3Bucket(_AwsModel):
    name: str


class S3Object(_AwsModel):
    key: str
    size: int | None = None
    e_tag: str | None = Field(None, alias="eTag")
    version_id: str | None = Field(None, alias="versionId")

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
    """One created object to process, as the notification named it."""

    bucket: str
    key: str
    event_name: str
    etag: str | None = None
    size: int | None = None

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def parse_notification(body: str) -> list[ObjectRef]:
    """The created objects a notification names, each once; ``[]`` for a test event."""
    try:
        payload = json.loads(body)
    except json.JSONDecodeError as exc:
        raise NotificationError(f"message body is not JSON: {exc}") from None
    if isinstance(payload, dict) and payload.get("Event") == TEST_EVENT:
        return []
    try:
        notification = S3Event.model_validate(payload)
    except ValidationError as exc:
        raise NotificationError(f"not an S3 event notification: {_first_error(exc)}") from None
    refs: dict[tuple[str, str, str | None], ObjectRef] = {}
    for record in notification.records:
        if not record.event_name.startswith(OBJECT_CREATED_PREFIX):
            continue
        obj = record.s3.object_
        ref = ObjectRef(
            bucket=record.s3.bucket.name, key=obj.key, event_name=record.event_name, etag=obj.e_tag, size=obj.size
        )
        refs.setdefault((ref.bucket, ref.key, ref.etag), ref)
    return list(refs.values())


def _first_error(exc: ValidationError) -> str:
    error = exc.errors(include_url=False)[0]
    where = ".".join(str(part) for part in error["loc"])
    return f"{where}: {error['msg']}" if where else error["msg"]
