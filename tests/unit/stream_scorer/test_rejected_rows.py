"""A rejected record is whatever a producer sent: its row must fit ``rejected_records`` on Postgres (no NUL in
text, every string within its column) and keep the payload's exact bytes, or the whole batch would fail."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import orjson
import pytest
from sqlalchemy import String

from churn_common.database import rejected_records
from churn_common.wire import Rejection
from stream_scorer.kinesis_event import UserRecords
from stream_scorer.rejects import rejected_rows

PAYLOADS: dict[str, bytes] = {
    "json-text": b'[1,"abc",1]',
    "nul-bytes": b"\x00garbage",
    "escaped-nul-in-json": b'[1,"a\\u0000b",1]',
    "not-utf8": b"\xff\xfe[1]",
    "text-that-looks-encoded": b"base64:WzEsImFiYyIsMV0=",
    "source-id-of-61": orjson.dumps([1, "s" * 61, 2**63 - 1]),
    "source-id-of-65": orjson.dumps([1, "s" * 65, 1]),
    "source-id-with-nul": orjson.dumps([1, "a\x00b", 1]),
    "huge-source-id": orjson.dumps([1, "s" * 100_000, 1]),
}
STRING_LENGTHS = {
    column.name: column.type.length
    for column in rejected_records.columns
    if isinstance(column.type, String) and column.type.length
}


def stored_rows(payloads: list[bytes], reasons: list[str]) -> list[dict[str, object]]:
    records = UserRecords(
        event_ids=[f"shardId-000000000000:{49_000 + i}:0" for i in range(len(payloads))],
        payloads=payloads,
        arrival_times=[0.0] * len(payloads),
    )
    rejections = [Rejection(i, reason) for i, reason in enumerate(reasons)]
    return rejected_rows(records, rejections, at=datetime.now(tz=UTC))


def original_bytes(stored: str) -> bytes:
    return base64.b64decode(stored.removeprefix("base64:")) if stored.startswith("base64:") else stored.encode()


@pytest.mark.parametrize("payload", list(PAYLOADS.values()), ids=list(PAYLOADS))
def test_every_rejected_row_fits_its_columns_and_keeps_the_exact_payload(payload: bytes) -> None:
    # GIVEN a poison payload WHEN its rejected_records row is made
    (row,) = stored_rows([payload], ["some reason"])
    # THEN no text holds a NUL, every string fits its column, and the payload reads back to its bytes
    text_values = {k: v for k, v in row.items() if isinstance(v, str)}
    assert not any("\x00" in v for v in text_values.values())
    assert all(len(text_values[name]) <= length for name, length in STRING_LENGTHS.items() if name in text_values)
    assert original_bytes(str(row["payload"])) == payload


def test_only_a_valid_source_id_is_attributed() -> None:
    # GIVEN payloads whose source ids are valid, too long for a record id, or unstorable
    rows = stored_rows(
        [PAYLOADS["json-text"], PAYLOADS["source-id-of-61"], PAYLOADS["source-id-with-nul"]], ["a", "b", "c"]
    )
    # THEN only the valid one is kept as the row's source
    assert [r["source_id"] for r in rows] == ["abc", None, None]


def test_a_reason_holding_a_nul_is_stored_with_it_escaped() -> None:
    (row,) = stored_rows([b"[1]"], ["bad value 'a\x00b'"])
    assert row["reason"] == "bad value 'a\\x00b'"
