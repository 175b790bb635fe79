"""The splitter against a corpus of malformed inputs: each gets a clear outcome, none crashes, and
every row read is either valid or rejected with its reasons."""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from churn_common.schema import FEATURE_COLUMNS
from producer.splitter import CsvSplit, FileFormatError, RejectedRow, ValidRow, split_csv

HEADER = (
    "Call  Failure,Complains,Subscription  Length,Charge  Amount,Seconds of Use,Frequency of use,"
    "Frequency of SMS,Distinct Called Numbers,Age Group,Tariff Plan,Status,Age,Customer Value,Churn"
)
GOOD = "8,0,38,0,4370,71,5,17,3,1,1,30,197.64,0"
GOOD_VALUES = dict(zip(FEATURE_COLUMNS, (8, 0, 38, 0, 4370, 71, 5, 17, 3, 1, 1, 30, 197.64), strict=True))


@dataclass
class Outcome:
    split: CsvSplit
    valid: list[ValidRow]
    rejected: list[RejectedRow]


def chunks_of(data: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def csv_bytes(*lines: str, ending: str = "\n") -> bytes:
    return "".join(f"{line}{ending}" for line in lines).encode()


def split_all(data: bytes, *, chunk: int = 64 * 1024, **options: int) -> Outcome:
    split = split_csv(chunks_of(data, chunk), **options)
    items = list(split)
    valid = [i for i in items if isinstance(i, ValidRow)]
    rejected = [i for i in items if isinstance(i, RejectedRow)]
    # The invariant every test relies on: nothing read is unaccounted for.
    assert split.counts.rows_read == len(valid) + len(rejected) == len(items)
    assert (split.counts.rows_valid, split.counts.rows_rejected) == (len(valid), len(rejected))
    return Outcome(split, valid, rejected)


def only_rejection(data: bytes) -> RejectedRow:
    outcome = split_all(data)
    assert not outcome.valid
    assert len(outcome.rejected) == 1
    return outcome.rejected[0]


# ---- file-level problems: one clear error naming the problem, before any row ----


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param(b"", "empty file", id="empty-file"),
        pytest.param(b"\n\r\n  \n", "empty file", id="only-blank-lines"),
        pytest.param(
            csv_bytes(HEADER.replace(",Age Group", "").replace(",Status", ""), "8,0"),
            "missing required columns: age_group, status",
            id="missing-required-columns",
        ),
        pytest.param(csv_bytes(HEADER + ",Age", GOOD + ",30"), "'age' appears twice", id="duplicate-column"),
        pytest.param(b'{"customers": [{"age": 30}]}\n', "no churn CSV header", id="json-not-csv"),
        pytest.param(csv_bytes(HEADER.replace(",", ";"), GOOD.replace(",", ";")), "seems to use ';'", id="semicolons"),
        pytest.param(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "looks like a PNG image", id="png-not-csv"),
        pytest.param(b"\x1f\x8b\x08\x00\xa3\xb1", "gzip-compressed", id="gzip-not-csv"),
        pytest.param(csv_bytes(HEADER, GOOD).decode().encode("utf-16"), "UTF-16", id="utf16-file"),
        pytest.param(b"Call  Failure,Complains,\xc2ge\n", "byte 0xc2 at position 24 of the header", id="latin1-header"),
        pytest.param(b"x" * 300_000, "first line is 300000 bytes long", id="huge-single-line"),
        pytest.param(b'"Call  Failure,Complains\n', "header is not valid CSV", id="unterminated-quote-header"),
    ],
)
def test_unreadable_files_raise_a_clear_file_level_error(data: bytes, message: str) -> None:
    # GIVEN a file that cannot be read as a churn CSV WHEN it is opened THEN the error says why
    with pytest.raises(FileFormatError, match=message.replace("(", r"\(")):
        split_csv(chunks_of(data, 4096))


def test_header_only_file_is_readable_and_has_no_rows() -> None:
    # GIVEN just a header WHEN split THEN no rows, no error
    outcome = split_all(csv_bytes(HEADER))
    assert outcome.split.counts.rows_read == 0
    assert outcome.split.header.has_label


# ---- files that are fine despite their form ----


def test_reordered_columns_map_by_name() -> None:
    # GIVEN the columns in reverse order
    names, values = HEADER.split(","), GOOD.split(",")
    data = csv_bytes(",".join(reversed(names)), ",".join(reversed(values)))
    # WHEN split THEN each value lands in its own column
    (row,) = split_all(data).valid
    assert {c: getattr(row.customer, c) for c in FEATURE_COLUMNS} == GOOD_VALUES
    assert row.customer.churn == 0


@pytest.mark.parametrize(
    "header",
    [
        pytest.param(HEADER.upper(), id="upper-case"),
        pytest.param(HEADER.lower().replace("  ", " ").replace(" ", "_"), id="snake-case"),
        pytest.param(",".join(f"  {name}\t" for name in HEADER.split(",")), id="padded-with-tabs"),
        pytest.param(HEADER.replace("  ", " "), id="single-spaces"),
    ],
)
def test_header_names_are_normalised_for_case_and_spacing(header: str) -> None:
    # GIVEN the same columns written with other case and spacing
    outcome = split_all(csv_bytes(header, GOOD))
    # THEN they are recognised, and nothing is reported as extra
    (row,) = outcome.valid
    assert {c: getattr(row.customer, c) for c in FEATURE_COLUMNS} == GOOD_VALUES
    assert outcome.split.header.extra_columns == ()


def test_extra_columns_are_ignored_and_reported() -> None:
    # GIVEN two columns the schema does not know, one of them without a name
    data = csv_bytes(f"Region,{HEADER},", f"north,{GOOD},x")
    # WHEN split THEN the row is valid and the extra columns are reported by their header text
    outcome = split_all(data)
    assert len(outcome.valid) == 1
    assert outcome.split.header.extra_columns == ("Region", "column 16 (no name)")


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 4096])
def test_bom_and_crlf_are_handled_at_any_chunk_boundary(chunk: int) -> None:
    # GIVEN a UTF-8 BOM and CRLF line ends, fed in chunks that split both the BOM and the CRLF
    data = b"\xef\xbb\xbf" + csv_bytes(HEADER, GOOD, GOOD, ending="\r\n")
    # WHEN split THEN both rows are valid and clean
    outcome = split_all(data, chunk=chunk)
    assert [r.row for r in outcome.valid] == [1, 2]
    assert outcome.split.header.positions["call_failure"] == 0


def test_binary_stream_is_read_in_chunks() -> None:
    # GIVEN a binary file object rather than an iterable of chunks
    import io

    split = split_csv(io.BytesIO(csv_bytes(HEADER, GOOD)), chunk_bytes=5)
    # WHEN iterated THEN the row comes out valid
    assert [type(item) for item in split] == [ValidRow]


def test_quoted_numbers_and_padded_cells_are_accepted() -> None:
    # GIVEN every cell quoted, some padded with spaces
    quoted = ",".join(f'" {v} "' if i % 2 else f'"{v}"' for i, v in enumerate(GOOD.split(",")))
    (row,) = split_all(csv_bytes(HEADER, quoted)).valid
    assert {c: getattr(row.customer, c) for c in FEATURE_COLUMNS} == GOOD_VALUES


def test_label_is_optional_blank_means_unlabelled() -> None:
    # GIVEN a file without the churn column, and one with a blank churn cell
    no_label = split_all(csv_bytes(HEADER.removesuffix(",Churn"), GOOD.removesuffix(",0")))
    blank_label = split_all(csv_bytes(HEADER, GOOD.removesuffix("0")))
    # THEN both rows are valid and carry no label
    assert not no_label.split.header.has_label
    assert no_label.valid[0].customer.churn is None
    assert blank_label.valid[0].customer.churn is None


def test_blank_lines_are_skipped_and_counted_and_rows_keep_their_numbers() -> None:
    # GIVEN blank lines between and after rows
    outcome = split_all(csv_bytes(HEADER, GOOD, "", "  ", GOOD, ""))
    # THEN two data rows numbered 1 and 2, on lines 2 and 5, and three blank lines
    assert [(r.row, r.line) for r in outcome.valid] == [(1, 2), (2, 5)]
    assert outcome.split.counts.blank_lines == 3


# ---- row-level problems: the row is rejected with every reason, the rest of the file goes on ----


def with_cell(column: str, value: str) -> str:
    cells = GOOD.split(",")
    cells[FEATURE_COLUMNS.index(column)] = value
    return ",".join(cells)


@pytest.mark.parametrize(
    ("line", "reasons"),
    [
        pytest.param(with_cell("age", ""), ["age: blank cell"], id="blank-cell"),
        pytest.param(with_cell("age", "   "), ["age: blank cell"], id="whitespace-cell"),
        pytest.param(
            with_cell("seconds_of_use", "abc"),
            ["seconds_of_use: Input should be a valid integer, unable to parse string as an integer (got 'abc')"],
            id="non-numeric",
        ),
        pytest.param(
            with_cell("customer_value", "12,5").replace("12,5", '"12,5"'),
            ["customer_value: Input should be a valid number, unable to parse string as a number (got '12,5')"],
            id="decimal-comma",
        ),
        pytest.param(
            with_cell("call_failure", "-3"),
            ["call_failure: Input should be greater than or equal to 0 (got '-3')"],
            id="negative-count",
        ),
        pytest.param(
            with_cell("age_group", "7"),
            ["age_group: Input should be less than or equal to 5 (got '7')"],
            id="age-group-7",
        ),
        pytest.param(with_cell("customer_value", "nan"), ["customer_value: Input should be a finite number"], id="nan"),
        pytest.param(
            with_cell("seconds_of_use", "4370.5"),
            ["seconds_of_use: Input should be a valid integer, unable to parse string as an integer (got '4370.5')"],
            id="fractional-count",
        ),
        pytest.param(
            GOOD.removesuffix(",0") + ",2", ["churn: Input should be less than or equal to 1 (got '2')"], id="label-2"
        ),
        pytest.param(
            ",".join(GOOD.split(",")[:11]),
            [
                "row has 11 cells, the header has 14",
                "age: no cell (the row is too short)",
                "customer_value: no cell (the row is too short)",
            ],
            id="ragged-short",
        ),
        pytest.param(GOOD + ",42", ["row has 15 cells, the header has 14"], id="ragged-long"),
        pytest.param(GOOD.replace(",38,", ',"38,'), ["malformed CSV: unexpected end of data"], id="stray-quote"),
        pytest.param(
            with_cell("call_failure", "-1").replace(",3,1,1,30,", ",7,1,1,,"),
            [
                "call_failure: Input should be greater than or equal to 0 (got '-1')",
                "age_group: Input should be less than or equal to 5 (got '7')",
                "age: blank cell",
            ],
            id="every-reason-of-a-row",
        ),
    ],
)
def test_bad_rows_are_rejected_with_every_reason_and_the_file_goes_on(line: str, reasons: list[str]) -> None:
    # GIVEN a good row, the bad one, another good row
    outcome = split_all(csv_bytes(HEADER, GOOD, line, GOOD))
    # THEN the bad row alone is rejected, with its number, its raw text and all its reasons
    assert [r.row for r in outcome.valid] == [1, 3]
    (rejected,) = outcome.rejected
    assert (rejected.row, rejected.line, rejected.raw) == (2, 3, line)
    assert len(rejected.reasons) == len(reasons)
    for reason, expected in zip(rejected.reasons, reasons, strict=True):
        assert reason.startswith(expected)


def test_non_utf8_bytes_in_a_row_reject_that_row_only() -> None:
    # GIVEN a Latin-1 byte in the middle of one row
    data = csv_bytes(HEADER, GOOD) + GOOD.replace("4370", "43\xe970").encode("latin-1") + b"\n" + csv_bytes(GOOD)
    outcome = split_all(data)
    # THEN that row is rejected for its encoding (and its value), the raw text shows the byte
    assert [r.row for r in outcome.valid] == [1, 3]
    (rejected,) = outcome.rejected
    assert rejected.reasons[0] == "not valid UTF-8: byte 0xe9 at position 11"
    assert rejected.reasons[1].startswith("seconds_of_use: Input should be a valid integer")
    assert "43\\xe970" in rejected.raw


def test_a_huge_line_is_rejected_without_being_held_in_memory() -> None:
    # GIVEN an 8 MB line between two good rows, streamed in 64 KiB chunks
    huge = 8 * 1024 * 1024

    def source() -> Iterator[bytes]:
        yield csv_bytes(HEADER, GOOD)
        for _ in range(huge // 65536):
            yield b"9" * 65536
        yield b"\n" + csv_bytes(GOOD)

    # WHEN split
    tracemalloc.start()
    try:
        items = list(split_csv(source()))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # THEN it is one rejected row with its length, the rows around it are fine, memory stayed small
    assert [type(i) for i in items] == [ValidRow, RejectedRow, ValidRow]
    assert items[1].reasons == [f"row is {huge} bytes long, more than the 65536 allowed"]
    assert len(items[1].raw) < 2_100
    assert peak < 1024 * 1024


def test_last_line_without_newline_is_read() -> None:
    outcome = split_all(csv_bytes(HEADER, GOOD) + GOOD.encode())
    assert [r.row for r in outcome.valid] == [1, 2]


def test_counts_add_up_on_a_mixed_file() -> None:
    # GIVEN 1,000 rows of which every 7th is bad in some way
    bad = [with_cell("age_group", "7"), with_cell("age", ""), GOOD + ",1", "garbage"]
    lines = [bad[i % len(bad)] if i % 7 == 0 else GOOD for i in range(1, 1001)]
    outcome = split_all(csv_bytes(HEADER, *lines), chunk=997)
    # THEN 142 rejected, 858 valid, row numbers 1..1000 each exactly once
    assert (len(outcome.valid), len(outcome.rejected)) == (858, 142)
    numbers = sorted([r.row for r in outcome.valid] + [r.row for r in outcome.rejected])
    assert numbers == list(range(1, 1001))
