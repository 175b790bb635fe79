"""The hand-over of a file from one invocation to the next: where the next segment starts and what the
earlier segments counted, carried in an SQS message on the producer's own queue.

Before a continuation is sent, it is also written next to the manifests (one object per segment handed
on). A redelivered message whose segment was already handed on therefore only sends the next one again
instead of streaming the segment twice, and no crash between the two writes can lose the rest of a file.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from churn_common.settings import Settings
from producer.locations import manifests_prefix

CONTINUATION_KIND = "churn-producer-continuation"
CONTINUATION_VERSION = 1


class SegmentTotals(BaseModel):
    """What the segments so far counted; the final manifest adds the last segment's figures."""

    model_config = ConfigDict(frozen=True)

    rows_read: int = Field(0, ge=0)
    records_sent: int = Field(0, ge=0)
    rows_rejected: int = Field(0, ge=0)
    blank_lines: int = Field(0, ge=0)
    kinesis_records: int = Field(0, ge=0)
    put_calls: int = Field(0, ge=0)
    bytes_sent: int = Field(0, ge=0)
    retried_entries: int = Field(0, ge=0)

    def plus(self, other: SegmentTotals) -> SegmentTotals:
        names = SegmentTotals.model_fields
        return SegmentTotals(**{name: getattr(self, name) + getattr(other, name) for name in names})


class Continuation(BaseModel):
    """Everything the next invocation needs to stream segment ``segment`` of one object version."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["churn-producer-continuation"] = CONTINUATION_KIND
    v: Literal[1] = CONTINUATION_VERSION
    bucket: str
    key: str
    etag: str
    version_id: str | None
    source_id: str
    size_bytes: int | None
    repeat: bool
    started_at: datetime
    event_time: datetime
    segment: int = Field(ge=1)
    offset: int = Field(ge=0, description="decoded bytes of the object before this segment")
    lines_before: int = Field(ge=1, description="physical lines before this segment, the header included")
    header_line_b64: str
    compressed: bool = Field(description="gzip bytes: resumed by decompressing from the start, not by a ranged GET")
    extra_columns: list[str]
    has_label: bool
    totals: SegmentTotals
    rejected_uris: list[str] = Field(default_factory=list)

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    @property
    def header_line(self) -> bytes:
        return base64.b64decode(self.header_line_b64)


def encode_header(line: bytes) -> str:
    return base64.b64encode(line).decode()


def continuation_in(body: str) -> Continuation | None:
    """The continuation an SQS message body holds, or ``None`` for any other body (an S3 notification)."""
    if f'"{CONTINUATION_KIND}"' not in body:
        return None
    try:
        payload = json.loads(body)
    except json.JSONDecodeError:
        return None
    if not (isinstance(payload, dict) and payload.get("kind") == CONTINUATION_KIND):
        return None
    return Continuation.model_validate(payload)


def handed_on_key(settings: Settings, *, source_id: str, version: str, segment: int) -> str:
    """Where the continuation that follows ``segment`` is kept once that segment is done."""
    return f"{manifests_prefix(settings, source_id)}{version}.segments/{segment:05d}.json"


@dataclass(frozen=True, slots=True)
class Deadline:
    """Seconds left in this invocation, and how many must be left for a clean hand-over."""

    remaining_seconds: Callable[[], float]
    handoff_seconds: float

    def expiring(self) -> bool:
        return bool(self.remaining_seconds() < self.handoff_seconds)

    @classmethod
    def of_context(cls, context: Any, *, handoff_seconds: float) -> Deadline:
        """From the Lambda context; without one (direct calls, tests) there is no deadline. The margin is at
        most half the time the invocation starts with, so a function given a timeout shorter than twice the
        setting still streams half of each invocation instead of one slice."""
        remaining = getattr(context, "get_remaining_time_in_millis", None)
        if remaining is None:
            return NO_DEADLINE
        at_start = remaining() / 1000
        return cls(lambda: remaining() / 1000, min(handoff_seconds, at_start / 2))


NO_DEADLINE = Deadline(lambda: float("inf"), 0.0)
