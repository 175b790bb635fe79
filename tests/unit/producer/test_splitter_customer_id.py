"""An optional ``customer_id`` column in input files: kept as text on the record, blank means none, a bad one
rejects its row with the reason; files without the column split exactly as before."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from churn_common.wire import CUSTOMER_ID_INDEX, encode
from producer.records import customer_record
from producer.splitter import RejectedRow, ValidRow, split_csv

FEATURE_HEADER = (
    "Call  Failure,Complains,Subscription  Length,Charge  Amount,Seconds of Use,Frequency of use,"
    "Frequency of SMS,Distinct Called Numbers,Age Group,Tariff Plan,Status,Age,Customer Value,Churn"
)
FEATURES = "8,0,38,0,4370,71,5,17,3,1,1,30,197.64,0"


def split(text: str) -> list[ValidRow | RejectedRow]:
    return list(split_csv(iter([text.encode()])))


def ids(items: list[ValidRow | RejectedRow]) -> list[str | None]:
    return [item.customer.customer_id for item in items if isinstance(item, ValidRow)]


@pytest.mark.parametrize("header", ["customer_id", "Customer ID", "Customer  Id"])
def test_a_customer_id_column_is_read_as_text_whatever_its_header_spelling(header: str) -> None:
    # GIVEN a file with the id column first, ids that look like numbers among them
    text = f"{header},{FEATURE_HEADER}\nC1,{FEATURES}\n00123,{FEATURES}\n"
    # WHEN split THEN both rows are valid and keep their ids as written
    assert ids(split(text)) == ["C1", "00123"]


def test_the_column_may_stand_anywhere_and_a_blank_or_padded_cell_is_handled_as_in_other_columns() -> None:
    # GIVEN the id column last, one row without an id, one padded, one quoted with a comma
    text = f'{FEATURE_HEADER},customer_id\n{FEATURES},C1\n{FEATURES},\n{FEATURES}, C3 \n{FEATURES},"Dupont, Jean"\n'
    # WHEN split THEN every row is valid, the blank one without an id
    assert ids(split(text)) == ["C1", None, "C3", "Dupont, Jean"]


@pytest.mark.parametrize(
    ("cell", "reason"),
    [
        ("x" * 65, "customer_id: String should have at most 64 characters"),
        ('"C1\tC2"', "customer_id: Value error, customer_id holds characters that are not printable"),
    ],
)
def test_a_bad_customer_id_rejects_its_row_with_the_reason(cell: str, reason: str) -> None:
    # GIVEN a good row and a row with a bad id
    items = split(f"customer_id,{FEATURE_HEADER}\nC1,{FEATURES}\n{cell},{FEATURES}\n")
    # THEN the good row is valid and the bad one rejected, naming the column
    assert ids(items) == ["C1"]
    [rejected] = [item for item in items if isinstance(item, RejectedRow)]
    assert any(r.startswith(reason) for r in rejected.reasons), rejected.reasons


def test_a_file_without_the_column_gives_records_without_ids() -> None:
    [item] = split(f"{FEATURE_HEADER}\n{FEATURES}\n")
    assert isinstance(item, ValidRow)
    assert item.customer.customer_id is None


def test_the_record_put_on_the_stream_carries_the_id_only_when_the_row_had_one() -> None:
    # GIVEN rows with and without an id
    rows = [i for i in split(f"customer_id,{FEATURE_HEADER}\nC1,{FEATURES}\n,{FEATURES}\n") if isinstance(i, ValidRow)]
    # WHEN they become stream records
    now = datetime.now(tz=UTC)
    payloads = [
        orjson.loads(encode(customer_record(r.customer, source_id="s", row=r.row, event_time=now))) for r in rows
    ]
    # THEN the first carries its id in the last position and the second ends at its label
    assert payloads[0][CUSTOMER_ID_INDEX] == "C1"
    assert len(payloads[1]) == CUSTOMER_ID_INDEX
