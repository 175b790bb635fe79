"""Poison records as rows of ``rejected_records``: reason and raw payload, stored whatever the bytes are."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from churn_common.wire import Rejection, peek_source_id
from stream_scorer.kinesis_event import UserRecords

REJECT_STAGE = "stream_scorer"
MAX_SOURCE_ID_LENGTH = 64  # rejected_records.source_id


def storable_payload(payload: bytes) -> str:
    """Raw payload as text a database keeps verbatim; anything else (binary, NUL bytes) as base64."""
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is None or "\x00" in text:
        return "base64:" + base64.b64encode(payload).decode()
    return text


def attributable_source(payload: bytes) -> str | None:
    """The payload's source id when it can be stored as one, so a rejection is traced to its file."""
    source_id = peek_source_id(payload)
    if source_id is None or not 0 < len(source_id) <= MAX_SOURCE_ID_LENGTH or "\x00" in source_id:
        return None
    return source_id


def rejected_rows(records: UserRecords, rejections: Sequence[Rejection], *, at: datetime) -> list[dict[str, Any]]:
    return [
        {
            "event_id": records.event_ids[r.index],
            "stage": REJECT_STAGE,
            "source_id": attributable_source(records.payloads[r.index]),
            "reason": r.reason,
            "payload": storable_payload(records.payloads[r.index]),
            "rejected_at": at,
        }
        for r in rejections
    ]
