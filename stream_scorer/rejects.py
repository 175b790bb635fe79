"""Poison records as rows of ``rejected_records``: reason and raw payload, stored whatever the bytes are.

A poison record is whatever a producer sent, so nothing of it may fail the write it is part of: every
text value of a row fits its column on Postgres, which holds no NUL character in text. The source id is
kept only when it is a valid one (:func:`~churn_common.wire.peek_source_id`), which fits its column.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from churn_common.wire import Rejection, peek_source_id
from stream_scorer.kinesis_event import UserRecords

REJECT_STAGE = "stream_scorer"
BASE64_PREFIX = "base64:"


def storable_payload(payload: bytes) -> str:
    """Raw payload as text a database keeps verbatim; anything else (binary, NUL bytes) as base64.

    A text payload that itself starts with the prefix is encoded too, so that the prefix always means
    base64 and every stored payload reads back to its exact bytes.
    """
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is None or "\x00" in text or text.startswith(BASE64_PREFIX):
        return BASE64_PREFIX + base64.b64encode(payload).decode()
    return text


def storable_reason(reason: str) -> str:
    """A reason may quote what it refused, NUL included."""
    return reason.replace("\x00", "\\x00")


def rejected_rows(records: UserRecords, rejections: Sequence[Rejection], *, at: datetime) -> list[dict[str, Any]]:
    return [
        {
            "event_id": records.event_ids[r.index],
            "stage": REJECT_STAGE,
            "source_id": peek_source_id(records.payloads[r.index]),
            "reason": storable_reason(r.reason),
            "payload": storable_payload(records.payloads[r.index]),
            "rejected_at": at,
        }
        for r in rejections
    ]
