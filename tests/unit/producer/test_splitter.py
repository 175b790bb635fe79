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
    # WHEN split THEN both rows are valid and clean, on their own lines, and no blank line is seen
    outcome = split_all(data, chunk=chunk)
    assert [(r.row, r.line) for r in outcome.valid] == [(1, 2), (2, 3)]
    assert outcome.split.header.positions["call_failure"] == 0
    assert outcome.split.counts.blank_lines == 0


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
        pytest.param(
            with_cell("customer_value", "nan"),
            ["customer_value: Input should be a valid number, unable to parse string as a number (got 'nan')"],
            id="nan",
        ),
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


def test_non_utf8_bytes_in_a_used_column_reject_that_row_only() -> None:
    # GIVEN a Latin-1 byte in the middle of one row's seconds of use
    data = csv_bytes(HEADER, GOOD) + GOOD.replace("4370", "43\xe970").encode("latin-1") + b"\n" + csv_bytes(GOOD)
    outcome = split_all(data)
    # THEN that row is rejected for its encoding, naming the column; the raw text shows the byte
    assert [r.row for r in outcome.valid] == [1, 3]
    (rejected,) = outcome.rejected
    assert rejected.reasons == ["seconds_of_use: not valid UTF-8: byte 0xe9"]
    assert "43\\xe970" in rejected.raw


def test_non_utf8_bytes_in_a_malformed_row_are_reported_with_the_csv_problem() -> None:
    # GIVEN a row with a Latin-1 byte and a stray quote
    bad = GOOD.replace("4370", '"43\xe970').encode("latin-1")
    (rejected,) = split_all(csv_bytes(HEADER) + bad + b"\n").rejected
    # THEN both problems are named
    assert rejected.reasons[0] == "not valid UTF-8: byte 0xe9 at position 12"
    assert rejected.reasons[1].startswith("malformed CSV")


@pytest.mark.parametrize("ending", ["\n", "\r"])
def test_a_huge_line_is_rejected_without_being_held_in_memory(ending: str) -> None:
    # GIVEN an 8 MB line between two good rows, streamed in 64 KiB chunks
    huge = 8 * 1024 * 1024

    def source() -> Iterator[bytes]:
        yield csv_bytes(HEADER, GOOD, ending=ending)
        for _ in range(huge // 65536):
            yield b"9" * 65536
        yield ending.encode() + csv_bytes(GOOD, ending=ending)

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


# ---- numbers: plain ASCII decimal notation only, never Python's literal syntax ----


@pytest.mark.parametrize(
    ("column", "cell"),
    [
        pytest.param("subscription_length", "3_8", id="underscore-in-integer"),
        pytest.param("customer_value", "1_000.5", id="underscore-in-decimal"),
        pytest.param("subscription_length", "\u0663\u0668", id="arabic-indic-digits"),
        pytest.param("subscription_length", "\uff13\uff18", id="fullwidth-digits"),
        pytest.param("age", "\u096a\u096b", id="devanagari-digits"),
        pytest.param("subscription_length", "+38", id="plus-sign"),
        pytest.param("seconds_of_use", "1e3", id="exponent-in-integer"),
        pytest.param("customer_value", "1e3", id="exponent-in-decimal"),
        pytest.param("customer_value", "1E2", id="capital-exponent"),
        pytest.param("seconds_of_use", "0x26", id="hexadecimal"),
        pytest.param("seconds_of_use", "0b101", id="binary"),
        pytest.param("customer_value", "inf", id="inf"),
        pytest.param("customer_value", "-Infinity", id="minus-infinity"),
        pytest.param("customer_value", "NaN", id="nan-capitalised"),
        pytest.param("subscription_length", "\u00a038", id="no-break-space-padding"),
        pytest.param("subscription_length", "38\u2009", id="thin-space-padding"),
        pytest.param("subscription_length", "38.", id="integer-with-bare-point"),
        pytest.param("customer_value", "1.2.3", id="two-points"),
        pytest.param("churn", "0.5", id="fractional-label"),
    ],
)
def test_numbers_in_python_literal_syntax_are_rejected_with_the_column_named(column: str, cell: str) -> None:
    # GIVEN a value that Python's int() or float() would read, but not as plain decimal notation
    line = GOOD.removesuffix(",0") + f",{cell}" if column == "churn" else with_cell(column, cell)
    # WHEN split
    rejected = only_rejection(csv_bytes(HEADER, line))
    # THEN the row is rejected, the reason names the column, quotes the cell and says what is expected
    (reason,) = rejected.reasons
    assert reason.startswith(f"{column}: Input should be a valid")
    assert repr(cell) in reason
    assert "plain digits" in reason


@pytest.mark.parametrize(
    ("column", "cell", "value"),
    [
        pytest.param("subscription_length", "38.0", 38, id="integer-with-zero-fraction"),
        pytest.param("seconds_of_use", "4370.000", 4370, id="integer-with-zeros-fraction"),
        pytest.param("subscription_length", "0038", 38, id="leading-zeros"),
        pytest.param("subscription_length", " 38\t", 38, id="ascii-padding"),
        pytest.param("call_failure", "-0", 0, id="minus-zero"),
        pytest.param("customer_value", "197.640", 197.64, id="decimal"),
        pytest.param("customer_value", "197", 197.0, id="decimal-without-fraction"),
        pytest.param("customer_value", "0.5", 0.5, id="decimal-below-one"),
        pytest.param("customer_value", ".5", 0.5, id="decimal-without-integer-part"),
        pytest.param("customer_value", "197.", 197.0, id="decimal-with-bare-point"),
    ],
)
def test_plain_decimal_notation_is_read(column: str, cell: str, value: float) -> None:
    # GIVEN a plain ASCII number, as spreadsheets and databases export them
    (row,) = split_all(csv_bytes(HEADER, with_cell(column, cell))).valid
    # THEN it is read as that number
    assert getattr(row.customer, column) == value


def test_whole_number_columns_accept_a_zero_fraction_only() -> None:
    # GIVEN a row written the way some spreadsheets write whole numbers, and one with a real fraction
    exported = ",".join(f"{v}.0" if "." not in v else v for v in GOOD.split(","))
    outcome = split_all(csv_bytes(HEADER, exported, with_cell("age", "30.5")))
    # THEN the first is read as the same row, the second is rejected
    (row,) = outcome.valid
    assert {c: getattr(row.customer, c) for c in FEATURE_COLUMNS} == GOOD_VALUES
    assert outcome.rejected[0].reasons[0].startswith("age: Input should be a valid integer")


def test_every_non_plain_cell_of_a_row_is_reported() -> None:
    # GIVEN a row with two Python-isms and an out-of-range value
    line = with_cell("call_failure", "1_0").replace(",3,1,1,", ",7,1,1,").replace(",197.64,", ",1e2,")
    rejected = only_rejection(csv_bytes(HEADER, line))
    # THEN all three are reported, in column order
    assert [r.split(":")[0] for r in rejected.reasons] == ["call_failure", "age_group", "customer_value"]


def test_a_long_cell_is_quoted_short_in_the_reason() -> None:
    # GIVEN a cell of 5,000 characters
    rejected = only_rejection(csv_bytes(HEADER, with_cell("age", "x" * 5000)))
    # THEN the reason stays short
    assert len(rejected.reasons[0]) < 300


# ---- line endings and dialects of real exports ----


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 4096])
def test_cr_only_line_endings_are_read_at_any_chunk_boundary(chunk: int) -> None:
    # GIVEN an old Mac export: lines end in CR alone, with a blank line and no CR after the last row
    data = csv_bytes(HEADER, GOOD, "", GOOD, ending="\r") + GOOD.encode()
    # WHEN split THEN every row is read on its own line and the blank line is counted
    outcome = split_all(data, chunk=chunk)
    assert [(r.row, r.line) for r in outcome.valid] == [(1, 2), (2, 4), (3, 5)]
    assert outcome.split.counts.blank_lines == 1


@pytest.mark.parametrize("chunk", [1, 2, 5, 4096])
def test_line_endings_may_be_mixed(chunk: int) -> None:
    # GIVEN a header ending in LF (as when a file is resumed after its header) and rows ending in CR, CRLF, LF
    data = f"{HEADER}\n{GOOD}\r{GOOD}\r\n{GOOD}\n\r{GOOD}".encode()
    # WHEN split THEN each line end ends one line, a CRLF counting once
    outcome = split_all(data, chunk=chunk)
    assert [(r.row, r.line) for r in outcome.valid] == [(1, 2), (2, 3), (3, 4), (4, 6)]
    assert outcome.split.counts.blank_lines == 1


@pytest.mark.parametrize("chunk", [1, 3, 64, 4096, 0])
@pytest.mark.parametrize("ending", ["\r", "\r\n"])
def test_an_oversized_line_ends_at_its_cr_whatever_the_chunks(chunk: int, ending: str) -> None:
    # GIVEN a 300-byte line, over the limit, between good rows
    data = csv_bytes(HEADER, GOOD, "9" * 300, GOOD, ending=ending)
    # WHEN split in chunks of any size (0: the first chunk ends right after the long line's CR)
    cut_after_cr = data.index(b"9" * 300) + 301
    outcome = split_all(data, chunk=chunk or cut_after_cr, max_line_bytes=len(HEADER))
    # THEN the long line alone is rejected, with its length, and the rows around it keep their lines
    assert [(r.row, r.line) for r in outcome.valid] == [(1, 2), (3, 4)]
    assert outcome.rejected[0].reasons == [f"row is 300 bytes long, more than the {len(HEADER)} allowed"]


@pytest.mark.parametrize("ending", ["\n", "\r\n", "\r"])
def test_a_trailing_empty_column_is_accepted_and_reported(ending: str) -> None:
    # GIVEN a header and rows that all end in a comma, as some exports write them
    data = csv_bytes(HEADER + ",", GOOD + ",", GOOD.removesuffix("0") + ",", ending=ending)
    # WHEN split THEN every row is valid and the empty column is reported as an extra one
    outcome = split_all(data)
    assert [r.row for r in outcome.valid] == [1, 2]
    assert outcome.valid[1].customer.churn is None
    assert outcome.split.header.extra_columns == ("column 15 (no name)",)


# ---- bytes that are not UTF-8, in columns that are not used ----


def test_non_utf8_bytes_in_an_unused_column_are_accepted() -> None:
    # GIVEN a Latin-1 export whose extra columns (name and values) hold non-ASCII text
    data = f"Région,Note,{HEADER},Ville\nÎle-de-France,café,{GOOD},Orléans\nnord,,{GOOD},Lille\n"
    outcome = split_all(data.encode("latin-1"))
    # THEN every row is valid, and the extra columns are reported with their undecodable bytes escaped
    assert [r.row for r in outcome.valid] == [1, 2]
    assert {c: getattr(outcome.valid[0].customer, c) for c in FEATURE_COLUMNS} == GOOD_VALUES
    assert outcome.split.header.extra_columns == ("R\\xe9gion", "Note", "Ville")


@pytest.mark.parametrize(
    "header",
    [
        pytest.param(HEADER.replace("Churn", "Churn\xa0"), id="label-with-a-latin1-no-break-space"),
        pytest.param(HEADER.replace("Customer Value", "Customer\xa0Value"), id="feature-with-a-latin1-byte"),
    ],
)
def test_a_used_column_name_that_is_not_utf8_is_a_file_error(header: str) -> None:
    # GIVEN a header whose used column is named in Latin-1
    data = (header + "\n" + GOOD + "\n").encode("latin-1")
    # WHEN opened THEN the file is not read (a label column would otherwise be lost silently)
    with pytest.raises(FileFormatError, match="not a UTF-8 CSV file: byte 0xa0"):
        split_csv(chunks_of(data, 4096))
