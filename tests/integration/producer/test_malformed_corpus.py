"""A corpus of malformed drops, each through the real handler on the emulator: every one gets a clear
outcome (processed with its bad rows rejected, or errored with the reason in the manifest), nothing
crashes, and the manifest's counts add up with what is on the stream and in the rejects file."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from churn_common.schema import FEATURE_COLUMNS
from churn_common.settings import get_settings
from churn_common.wire import FEATURE_SLICE, LABEL_INDEX
from producer.handler import lambda_handler
from tests.integration.producer.conftest import Drops, read_stream

pytestmark = pytest.mark.integration

HEADER = (
    "Call  Failure,Complains,Subscription  Length,Charge  Amount,Seconds of Use,Frequency of use,"
    "Frequency of SMS,Distinct Called Numbers,Age Group,Tariff Plan,Status,Age,Customer Value,Churn"
)
GOOD = "8,0,38,0,4370,71,5,17,3,1,1,30,197.64,0"
OTHER = "0,0,37,0,0,0,0,0,2,1,2,25,0.0,1"
GOOD_FIELDS = (8, 0, 38, 0, 4370, 71, 5, 17, 3, 1, 1, 30, 197.64, 0)
HUGE_LINE_BYTES = 300_000


def lines(*rows: str, ending: str = "\n") -> bytes:
    return "".join(f"{row}{ending}" for row in rows).encode()


def with_cell(column: str, value: str) -> str:
    cells = GOOD.split(",")
    cells[FEATURE_COLUMNS.index(column)] = value
    return ",".join(cells)


def between_good_rows(bad: bytes) -> bytes:
    return lines(HEADER, GOOD) + bad + b"\n" + lines(OTHER)


@dataclass(frozen=True)
class Expected:
    """What the manifest must say; ``reason`` is in the error (errored) or in the rejected row's reasons."""

    status: str
    rows_read: int = 0
    records_sent: int = 0
    rows_rejected: int = 0
    reason: str | None = None
    extra_columns: tuple[str, ...] = ()


def processed(read: int, sent: int, rejected: int, reason: str | None = None, **more: tuple[str, ...]) -> Expected:
    return Expected("processed", read, sent, rejected, reason, **more)


def errored(reason: str) -> Expected:
    return Expected("errored", reason=reason)


CORPUS = [
    pytest.param(b"", errored("empty file: no header line"), id="empty-file"),
    pytest.param(b"\r\n\n   \n", errored("empty file: no header line"), id="blank-lines-only"),
    pytest.param(lines(HEADER), processed(0, 0, 0), id="header-only"),
    pytest.param(
        lines(HEADER.replace(",Age Group", ""), GOOD),
        errored("missing required columns: age_group"),
        id="missing-required-column",
    ),
    pytest.param(
        lines(",".join(reversed(HEADER.split(","))), ",".join(reversed(GOOD.split(",")))),
        processed(1, 1, 0),
        id="reordered-columns",
    ),
    pytest.param(
        lines(f"Region,{HEADER},", f"north,{GOOD},x", f"south,{OTHER},"),
        processed(2, 2, 0, extra_columns=("Region", "column 16 (no name)")),
        id="extra-columns",
    ),
    pytest.param(b"\xef\xbb\xbf" + lines(HEADER, GOOD, OTHER), processed(2, 2, 0), id="utf8-bom"),
    pytest.param(lines(HEADER, GOOD, OTHER, ending="\r\n"), processed(2, 2, 0), id="crlf-line-ends"),
    pytest.param(
        lines(HEADER, ",".join(f'"{v}"' for v in GOOD.split(",")), OTHER), processed(2, 2, 0), id="quoted-numbers"
    ),
    pytest.param(
        between_good_rows(with_cell("age", "").encode()), processed(3, 2, 1, "age: blank cell"), id="blank-cell"
    ),
    pytest.param(
        between_good_rows(with_cell("seconds_of_use", "n/a").encode()),
        processed(3, 2, 1, "seconds_of_use: Input should be a valid integer"),
        id="non-numeric-cell",
    ),
    pytest.param(
        between_good_rows(with_cell("call_failure", "-3").encode()),
        processed(3, 2, 1, "call_failure: Input should be greater than or equal to 0"),
        id="negative-count",
    ),
    pytest.param(
        between_good_rows(with_cell("age_group", "7").encode()),
        processed(3, 2, 1, "age_group: Input should be less than or equal to 5 (got '7')"),
        id="age-group-7",
    ),
    pytest.param(
        between_good_rows(GOOD.removesuffix(",0").encode() + b",2"),
        processed(3, 2, 1, "churn: Input should be less than or equal to 1"),
        id="label-out-of-range",
    ),
    pytest.param(
        between_good_rows(GOOD.replace("4370", "43\xe970").encode("latin-1")),
        processed(3, 2, 1, "not valid UTF-8: byte 0xe9"),
        id="non-utf8-row",
    ),
    pytest.param(
        lines(HEADER, GOOD).decode().encode("utf-16"),
        errored("not a UTF-8 CSV file: it looks like UTF-16"),
        id="utf16-file",
    ),
    pytest.param(
        between_good_rows(f"{GOOD},42".encode()),
        processed(3, 2, 1, "row has 15 cells, the header has 14"),
        id="ragged-too-many-fields",
    ),
    pytest.param(
        between_good_rows(",".join(GOOD.split(",")[:11]).encode()),
        processed(3, 2, 1, "row has 11 cells, the header has 14"),
        id="ragged-too-few-fields",
    ),
    pytest.param(
        between_good_rows(GOOD.replace(",38,", ',"38,').encode()),
        processed(3, 2, 1, "malformed CSV"),
        id="stray-quote",
    ),
    pytest.param(b'{"customers": [{"age": 30}]}\n', errored("no churn CSV header"), id="json-not-csv"),
    pytest.param(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", errored("it looks like a PNG image"), id="png-not-csv"),
    pytest.param(b"\x1f\x8b\x08\x00\xa3\xb1garbage", errored("gzip data"), id="gzip-not-csv"),
    pytest.param(
        lines(HEADER.replace(",", ";"), GOOD.replace(",", ";")), errored("seems to use ';'"), id="semicolon-separated"
    ),
    pytest.param(
        b"9" * HUGE_LINE_BYTES, errored(f"the first line is {HUGE_LINE_BYTES} bytes long"), id="huge-single-line"
    ),
    pytest.param(
        between_good_rows(b"9" * HUGE_LINE_BYTES),
        processed(3, 2, 1, f"row is {HUGE_LINE_BYTES} bytes long"),
        id="huge-row-between-good-rows",
    ),
]


@pytest.mark.parametrize(("data", "expected"), CORPUS)
def test_malformed_drop_has_a_clear_outcome_and_counts_that_add_up(
    drops: Drops, request: pytest.FixtureRequest, data: bytes, expected: Expected
) -> None:
    # GIVEN the malformed file dropped into the input prefix
    name = f"{request.node.callspec.id}.csv"
    key = drops.put(name, data)
    # WHEN the notification is handled
    response = lambda_handler(drops.event(), None)
    # THEN nothing crashed and the message is acknowledged (retrying a bad file cannot help)
    assert response == {"batchItemFailures": []}
    # AND the manifest states the outcome, with the reason, and rows read = records sent + rows rejected
    manifest = drops.manifest(name)
    assert manifest["status"] == expected.status
    counts = (manifest["rows_read"], manifest["records_sent"], manifest["rows_rejected"])
    assert counts == (expected.rows_read, expected.records_sent, expected.rows_rejected)
    assert manifest["rows_read"] == manifest["records_sent"] + manifest["rows_rejected"]
    assert tuple(manifest["extra_columns"]) == expected.extra_columns
    if expected.status == "errored":
        assert expected.reason in manifest["error"]
    # AND the object moved out of the input prefix to where its outcome says
    target = "data/processed/" if expected.status == "processed" else "data/errored/"
    assert key not in drops.stored_keys()
    assert f"{target}{name}" in drops.stored_keys()
    # AND the stream holds exactly the records sent, each a good row with its values
    records = read_stream(get_settings().stream_name).records
    assert len(records) == expected.records_sent
    assert all(r.fields[1] == manifest["source_id"] for r in records)
    if expected.records_sent and expected.rows_rejected:
        by_row = {r.fields[2]: r.fields for r in records}
        assert sorted(by_row) == [1, 3]
        assert (*by_row[1][FEATURE_SLICE], by_row[1][LABEL_INDEX]) == GOOD_FIELDS
    # AND every rejected row is in the rejects file with its number, its raw text and its reasons
    if expected.rows_rejected:
        rejects = drops.rejects(manifest)
        assert len(rejects) == expected.rows_rejected
        assert [r["row"] for r in rejects] == [2]
        assert rejects[0]["raw"]
        assert any(expected.reason in reason for reason in rejects[0]["reasons"]), rejects[0]["reasons"]
    else:
        assert manifest["rejected_uri"] is None
        assert not any(k.startswith("data/rejected/") for k in drops.stored_keys())


def test_reordered_columns_put_each_value_in_its_own_field(drops: Drops) -> None:
    # GIVEN a file whose columns are in reverse order
    data = lines(",".join(reversed(HEADER.split(","))), ",".join(reversed(GOOD.split(","))))
    drops.put("reversed.csv", data)
    # WHEN handled
    lambda_handler(drops.event(), None)
    # THEN the record on the stream carries the values by name, not by position
    (record,) = read_stream(get_settings().stream_name).records
    assert (*record.fields[FEATURE_SLICE], record.fields[LABEL_INDEX]) == GOOD_FIELDS
