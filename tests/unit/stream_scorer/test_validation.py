"""The scorer's column-wise validation must decide exactly as the wire contract does."""

from __future__ import annotations

import random

import orjson
import pytest

from churn_common.wire import WIRE_V1_FIELDS, decode_batch, encode
from stream_scorer.validation import decode_columns
from tests.factories import customer_record

# One bad value per field kind, and payloads that are not v1 records at all.
BAD_VALUES: dict[str, list[object]] = {
    "v": [2, 0, "1", None],  # the contract reads true and 1.0 as version 1: harmless, and both agree
    "source_id": ["", "x" * 65, "a\x00b", 7, None],
    "row": [0, -1, 2**63, "3", 1.5, True],
    "event_time_ms": [-1, 253_402_300_800_000, 1.5e12, "now"],
    "call_failure": [-1, 2**31, 8.0, "8", None, True, [1]],
    "complains": [2, -1, 0.5, False],
    "charge_amount": [11, -1],
    "age_group": [0, 6],
    "tariff_plan": [0, 3],
    "status": [3],
    "age": [121, -5],
    "customer_value": [-0.01, "12.5", None, True],
    "label": [2, -1, "0", 0.0],
}
NOT_RECORDS: list[bytes] = [
    b"",
    b"not json",
    b"\x00\xff binary",
    b"{}",
    b'{"v": 1}',
    b"[]",
    b"[1]",
    b"17",
    b'"a string of eighteen"',
    b'[1,"a",1,5,1,0,38,0,4370,71,5,17,3,1,1,30,197.64]',
    b'[1,"a",1,5,1,0,38,0,4370,71,5,17,3,1,1,30,197.64,0,0]',
    b"[9,1]",
]


def _poison(field: str, value: object, row: int) -> bytes:
    record = orjson.loads(encode(customer_record(row=row)))
    record[WIRE_V1_FIELDS.index(field)] = value
    return orjson.dumps(record)


@pytest.fixture
def mixed_batch() -> list[bytes]:
    """Valid records (with and without labels, int and float money) interleaved with every poison kind."""
    rng = random.Random(11)
    good = [
        encode(customer_record(row=i, label=rng.choice([0, 1, None]), customer_value=rng.choice([0, 197, 12.5])))
        for i in range(1, 201)
    ]
    bad = [_poison(f, v, 1000 + i) for i, (f, values) in enumerate(BAD_VALUES.items()) for v in values]
    batch = good + bad + NOT_RECORDS
    rng.shuffle(batch)
    return batch


def test_same_records_accepted_and_same_reasons_as_the_contract(mixed_batch: list[bytes]) -> None:
    # GIVEN a batch mixing valid records with every kind of poison
    # WHEN it is decoded column-wise and by the contract's record-by-record decoder
    ours = decode_columns(mixed_batch)
    contract = decode_batch(mixed_batch)
    # THEN both accept the same records with the same values, and reject the rest with the same reasons
    assert sorted(zip(ours.indices, zip(*ours.columns, strict=True), strict=True)) == sorted(
        zip(contract.indices, contract.records, strict=True)
    )
    assert sorted((r.index, r.reason) for r in ours.rejections) == [(r.index, r.reason) for r in contract.rejections]
    assert len(ours) + len(ours.rejections) == len(mixed_batch)
    assert len(ours.rejections) == sum(map(len, BAD_VALUES.values())) + len(NOT_RECORDS)


def test_clean_batch_keeps_input_order_and_gives_columns_by_field_name() -> None:
    payloads = [encode(customer_record(row=i, age=20 + i)) for i in range(1, 6)]
    decoded = decode_columns(payloads)
    assert decoded.indices == [0, 1, 2, 3, 4]
    assert decoded.rejections == []
    assert decoded.column("row") == (1, 2, 3, 4, 5)
    assert decoded.column("age") == (21, 22, 23, 24, 25)


@pytest.mark.parametrize("payloads", [[], [b"garbage"], [b"[9]", b"{}"]], ids=["empty", "one-bad", "all-bad"])
def test_batches_without_a_valid_record(payloads: list[bytes]) -> None:
    decoded = decode_columns(payloads)
    assert len(decoded) == 0
    assert [r.index for r in decoded.rejections] == list(range(len(payloads)))
    assert all(column == () for column in decoded.columns)


@pytest.mark.parametrize("width", [1, len(WIRE_V1_FIELDS) - 1, len(WIRE_V1_FIELDS) + 1])
def test_records_that_agree_on_a_wrong_width_are_rejected_not_crashed(width: int) -> None:
    # GIVEN a batch whose every record is an array of the same wrong length (e.g. a producer on another schema)
    payloads = [orjson.dumps(list(range(width))) for _ in range(3)]
    # WHEN it is decoded THEN each record is rejected with the contract's reason
    decoded = decode_columns(payloads)
    assert len(decoded) == 0
    assert [r.index for r in decoded.rejections] == [0, 1, 2]
    assert [r.reason for r in decoded.rejections] == [r.reason for r in decode_batch(payloads).rejections]
