"""Every text value of the wire contract fits the column it is stored in, whatever a producer sends: the
record id (``source_id:row``) fits ``predictions.record_id`` for every valid source id and row."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from churn_common.database import predictions, rejected_records
from churn_common.wire import CustomerRecord, decode_batch, peek_source_id
from stream_scorer.validation import decode_columns
from tests.factories import TYPICAL_FEATURES

LARGEST_ROW = 2**63 - 1  # BIGINT
RECORD_ID_COLUMN = predictions.c.record_id.type.length
SOURCE_ID_COLUMNS = {predictions.c.source_id.type.length, rejected_records.c.source_id.type.length}
FEATURES: list[Any] = [8, 0, 38, 0, 4370, 71, 5, 17, 3, 1, 1, 30, 197.64]


def payload(source_id: Any, row: int = 1) -> bytes:
    return orjson.dumps([1, source_id, row, 1_764_139_800_123, *FEATURES, 0])


def test_the_longest_record_id_fits_its_column() -> None:
    # GIVEN the longest source id the contract allows and the largest row number
    record = CustomerRecord(
        source_id="s" * 60, row=LARGEST_ROW, event_time=datetime.now(tz=UTC), features=TYPICAL_FEATURES
    )
    # THEN its record id fills its column exactly, and the source id fits its own columns
    assert len(record.record_id) == RECORD_ID_COLUMN == 80
    assert min(SOURCE_ID_COLUMNS) >= len(record.source_id)


@pytest.mark.parametrize("decode", [decode_batch, decode_columns], ids=["contract", "scorer"])
def test_a_source_id_too_long_for_the_record_id_is_rejected_and_its_neighbours_kept(decode: Any) -> None:
    # GIVEN the longest valid source id with the largest row, then one character more (a record id of 81)
    payloads = [payload("s" * 60, LARGEST_ROW), payload("s" * 61, LARGEST_ROW), payload("s" * 64, 10**15)]
    # WHEN decoded
    decoded = decode(payloads)
    # THEN the first is accepted, the others are rejected for their source id
    assert list(decoded.indices) == [0]
    assert [(r.index, r.reason) for r in decoded.rejections] == [
        (1, "source_id: String should have at most 60 characters"),
        (2, "source_id: String should have at most 60 characters"),
    ]


@pytest.mark.parametrize(
    "source_id",
    [
        pytest.param("s" * 61, id="too-long-for-the-record-id"),
        pytest.param("s" * 65, id="too-long-for-its-column"),
        pytest.param("s" * 100_000, id="huge"),
        pytest.param("", id="empty"),
        pytest.param("a\x00b", id="nul"),
        pytest.param(7, id="a-number"),
        pytest.param(["abc"], id="a-list"),
        pytest.param(None, id="null"),
    ],
)
def test_peek_source_id_gives_only_a_valid_source_id(source_id: Any) -> None:
    # GIVEN a rejected payload whose source id is not a valid one
    # THEN no source is attributed, so nothing unstorable reaches rejected_records.source_id
    assert peek_source_id(payload(source_id)) is None


def test_peek_source_id_attributes_a_valid_source_id() -> None:
    assert peek_source_id(payload("s" * 60)) == "s" * 60
    assert peek_source_id(b'[2,"abc"]') == "abc"


def test_a_reason_quotes_an_unknown_version_briefly() -> None:
    # GIVEN a payload whose version is a 100,000-character string
    (rejection,) = decode_batch([orjson.dumps(["v" * 100_000, "abc"])]).rejections
    # THEN the reason says so in a few words
    assert rejection.reason.startswith("unknown schema version: 'vvv")
    assert len(rejection.reason) < 120
