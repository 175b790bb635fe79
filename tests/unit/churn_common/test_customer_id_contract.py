"""The optional customer id of the record contract: validated where a record enters, carried on the wire only
when present, read back from either width."""

from __future__ import annotations

import orjson
import pytest
from pydantic import ValidationError

from churn_common.schema import MAX_CUSTOMER_ID_LENGTH, CustomerRow
from churn_common.wire import CUSTOMER_ID_INDEX, decode_batch, encode, to_record
from stream_scorer.validation import decode_columns
from tests.factories import TYPICAL_FEATURES, customer_record

# The wire tuple of a record, written out by hand: envelope, the 13 features of TYPICAL_FEATURES, the label.
HAND_WRITTEN = [1, "3f9a0c2be871", 17, 1764139800123, 8, 0, 38, 0, 4370, 71, 5, 17, 3, 1, 1, 30, 197.64, 0]


def payload(*extra: object) -> bytes:
    return orjson.dumps([*HAND_WRITTEN, *extra])


@pytest.mark.parametrize("value", ["C1", "C000563-00000001", "x" * MAX_CUSTOMER_ID_LENGTH, "Jean Dupont", "Zoë-7"])
def test_a_printable_customer_id_up_to_64_characters_is_accepted(value: str) -> None:
    # GIVEN a row with the id WHEN validated THEN it is kept as given
    assert CustomerRow.model_validate({**TYPICAL_FEATURES, "customer_id": value}).customer_id == value


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "at least 1 character"),
        ("x" * (MAX_CUSTOMER_ID_LENGTH + 1), "at most 64 characters"),
        ("C1\tC2", "not printable"),
        ("C1\n", "not printable"),
        ("C1\x00", "not printable"),
        (" C1", "starts or ends with spaces"),
        ("C1 ", "starts or ends with spaces"),
    ],
)
def test_an_unusable_customer_id_is_refused_with_its_reason(value: str, reason: str) -> None:
    with pytest.raises(ValidationError, match=reason):
        CustomerRow.model_validate({**TYPICAL_FEATURES, "customer_id": value})


def test_a_row_without_customer_id_has_none() -> None:
    assert CustomerRow.model_validate(TYPICAL_FEATURES).customer_id is None


def test_a_record_without_customer_id_keeps_its_wire_bytes() -> None:
    # GIVEN a record without a customer id WHEN encoded THEN it ends at its label, as records always did
    fields = orjson.loads(encode(customer_record(row=17, label=1)))
    assert len(fields) == CUSTOMER_ID_INDEX
    assert fields[-1] == 1


def test_a_record_with_customer_id_carries_it_last_and_reads_back() -> None:
    # GIVEN a record with a customer id
    record = customer_record(row=17, label=1, customer_id="C42")
    # WHEN it is encoded and decoded
    fields = orjson.loads(encode(record))
    decoded = decode_batch([encode(record)])
    # THEN the id is the last position and comes back with the record
    assert fields[CUSTOMER_ID_INDEX] == "C42"
    assert decoded.rejections == []
    assert to_record(decoded.records[0]).customer_id == "C42"


@pytest.mark.parametrize(
    "payloads",
    [
        [payload(), payload()],
        [payload("C1"), payload("C2")],
        [payload("C1"), payload(), payload(None)],
    ],
    ids=["all-without", "all-with", "mixed"],
)
def test_batches_of_either_width_or_both_decode_with_the_id_or_none(payloads: list[bytes]) -> None:
    # WHEN a batch is decoded column-wise and record by record
    columns = decode_columns(payloads)
    records = decode_batch(payloads)
    # THEN every record is valid and the customer id column holds each record's id, None where absent
    expected = [
        orjson.loads(p)[CUSTOMER_ID_INDEX] if len(orjson.loads(p)) > CUSTOMER_ID_INDEX else None for p in payloads
    ]
    assert columns.rejections == records.rejections == []
    assert list(columns.column("customer_id")) == expected
    assert [r[CUSTOMER_ID_INDEX] for r in records.records] == expected


@pytest.mark.parametrize(
    ("customer_id", "reason"),
    [("", "customer_id: String should have at least 1 character"), (7, "customer_id: Input should be a valid string")],
)
def test_a_bad_customer_id_rejects_its_record_only(customer_id: object, reason: str) -> None:
    # GIVEN a record with a bad customer id between two good ones
    payloads = [payload("C1"), payload(customer_id), payload()]
    # WHEN the batch is decoded column-wise
    decoded = decode_columns(payloads)
    # THEN the bad one is rejected with the contract's reason, the others kept with their ids
    assert decoded.indices == [0, 2]
    assert [(r.index, r.reason) for r in decoded.rejections] == [(1, reason)]
    assert list(decoded.column("customer_id")) == ["C1", None]
