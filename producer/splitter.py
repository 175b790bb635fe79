"""Splits a CSV byte stream into validated customer rows and rejections, one line at a time.

Memory stays bounded whatever the input (an overlong line is skipped and rejected, not buffered). No
field holds a line break (the customer id, the one text field, must be printable), so each physical line is
parsed on its own (LF, CRLF or lone CR, in any mix): a stray
quote damages one row only, and a file can be resumed anywhere. Numbers are read in plain ASCII decimal
notation only: a value a spreadsheet or a person would read differently is rejected, not guessed.
Problems of the file as a whole raise :class:`FileFormatError` before any row is produced.

Design notes: docs/producer.md#csv-parsing-rules
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from pydantic import BaseModel, ConfigDict, ValidationError

from churn_common.errors import PermanentError
from churn_common.schema import (
    CUSTOMER_ID_COLUMN,
    DECIMAL_COLUMNS,
    FEATURE_COLUMNS,
    LABEL_COLUMN,
    CustomerRow,
    normalise_header,
)

CHUNK_BYTES = 64 * 1024
MAX_LINE_BYTES = 64 * 1024
MAX_RAW_CHARS = 2_000
MAX_SHOWN_CHARS = 40
UTF8_BOM = b"\xef\xbb\xbf"
REQUIRED_COLUMNS: tuple[str, ...] = FEATURE_COLUMNS
NUMBER_COLUMNS: tuple[str, ...] = (*FEATURE_COLUMNS, LABEL_COLUMN)
KNOWN_COLUMNS: tuple[str, ...] = (*NUMBER_COLUMNS, CUSTOMER_ID_COLUMN)
OPTIONAL_COLUMNS: frozenset[str] = frozenset({LABEL_COLUMN, CUSTOMER_ID_COLUMN})  # a blank cell: no value
OTHER_DELIMITERS: tuple[str, ...] = (";", "\t", "|")
PADDING = " \t"

# Possessive quantifiers: no backtracking, as these run on every line.
_WHOLE_NUMBER = re.compile(r"-?[0-9]++(?:\.0++)?+")
_DECIMAL_NUMBER = re.compile(r"-?(?:[0-9]++(?:\.[0-9]*+)?+|\.[0-9]++)")
_WHOLE_NUMBER_REASON = (
    "Input should be a valid integer, unable to parse string as an integer (got {}): "
    "write plain digits, e.g. 38 or 38.0"
)
_DECIMAL_NUMBER_REASON = (
    "Input should be a valid number, unable to parse string as a number (got {}): "
    "write plain digits with an optional decimal point, e.g. 197.64"
)
_SYNTAX: dict[str, tuple[re.Pattern[str], str]] = {
    **dict.fromkeys(NUMBER_COLUMNS, (_WHOLE_NUMBER, _WHOLE_NUMBER_REASON)),
    **dict.fromkeys(DECIMAL_COLUMNS, (_DECIMAL_NUMBER, _DECIMAL_NUMBER_REASON)),
}
# A customer id cell the row model may take as it is; any other (padded, quoted, blank) is checked in full.
_PLAIN_CUSTOMER_ID = r'[^,"\s]++'
# A cell of an unused column that the CSV reader would take as it is.
_PLAIN_CELL = r'[^,"\r\n]*+'
# What a byte that is not UTF-8 becomes when decoded with "surrogateescape".
_UNDECODABLE = re.compile("[\udc80-\udcff]")

# What a file that fails to decode as UTF-8 most likely is, by its first bytes.
BINARY_SIGNATURES: dict[bytes, str] = {
    b"\xff\xfe": "UTF-16 text (little-endian byte order mark)",
    b"\xfe\xff": "UTF-16 text (big-endian byte order mark)",
    b"\x1f\x8b": "a gzip-compressed file",
    b"PK\x03\x04": "a zip archive (an .xlsx workbook is one)",
    b"\xd0\xcf\x11\xe0": "a legacy Office document (.xls)",
    b"%PDF": "a PDF document",
    b"\x89PNG": "a PNG image",
}

ByteSource = BinaryIO | Iterable[bytes]


class FileFormatError(PermanentError, ValueError):
    """The object as a whole cannot be read as a churn CSV; retrying cannot help."""


class RejectedRow(BaseModel):
    """One bad data row, as written to the rejects file: where it was, what it said, every reason."""

    model_config = ConfigDict(frozen=True)

    row: int
    line: int
    raw: str
    reasons: list[str]


@dataclass(frozen=True, slots=True)
class ValidRow:
    row: int
    line: int
    customer: CustomerRow


SplitRow = ValidRow | RejectedRow


@dataclass(frozen=True, slots=True)
class CsvHeader:
    """Where each known column is, and which columns of the file are not used."""

    width: int
    positions: dict[str, int]
    extra_columns: tuple[str, ...]
    plain_row: re.Pattern[str] = field(init=False)

    def __post_init__(self) -> None:
        # A line this matches splits at its commas as the CSV reader would, into plain numbers where used.
        cells = [_PLAIN_CELL] * self.width
        for name, index in self.positions.items():
            cells[index] = _SYNTAX[name][0].pattern if name in _SYNTAX else _PLAIN_CUSTOMER_ID
        object.__setattr__(self, "plain_row", re.compile(",".join(cells)))

    @property
    def has_label(self) -> bool:
        return LABEL_COLUMN in self.positions


@dataclass(slots=True)
class SplitCounts:
    rows_read: int = 0
    rows_valid: int = 0
    rows_rejected: int = 0
    blank_lines: int = 0


@dataclass(frozen=True, slots=True)
class _Line:
    """A physical line without its ending; an oversized one keeps only its first bytes."""

    number: int
    data: bytes
    oversized: int = 0


def _chunks(source: ByteSource, chunk_bytes: int) -> Iterator[bytes]:
    read = getattr(source, "read", None)
    if read is None:
        yield from source  # type: ignore[misc]
        return
    while chunk := read(chunk_bytes):
        yield chunk


def _lines(chunks: Iterable[bytes], *, max_line_bytes: int) -> Iterator[_Line]:
    """Lines end in LF, CRLF or a lone CR, in any mix (a CR at the end of a chunk waits for the next one,
    as it may be the first half of a CRLF)."""
    pending = b""
    preview = b""
    discarded = 0  # bytes seen so far of a line too long to keep
    number = 0
    for chunk in chunks:
        data = pending + chunk
        held = b"\r" if data.endswith(b"\r") else b""
        data = data[: len(data) - len(held)]
        if b"\r" in data:
            data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        parts = data.split(b"\n")
        pending = parts.pop()
        for part in parts:
            number += 1
            if discarded:
                yield _Line(number, preview, oversized=discarded + len(part))
                discarded, preview = 0, b""
            elif len(part) > max_line_bytes:
                yield _Line(number, part[:MAX_RAW_CHARS], oversized=len(part))
            else:
                yield _Line(number, part)
        if len(pending) > max_line_bytes:
            preview = preview or pending[:MAX_RAW_CHARS]
            discarded += len(pending)
            pending = b""
        pending += held
    pending = pending.removesuffix(b"\r")
    if discarded:
        yield _Line(number + 1, preview, oversized=discarded + len(pending))
    elif pending:
        yield _Line(number + 1, pending)


def _not_utf8(data: bytes, error: UnicodeDecodeError) -> str:
    for signature, description in BINARY_SIGNATURES.items():
        if data.startswith(signature):
            return f"not a UTF-8 CSV file: it looks like {description}"
    return f"not a UTF-8 CSV file: byte 0x{data[error.start]:02x} at position {error.start} of the header"


def _no_header_hint(text: str) -> str:
    used = [d for d in OTHER_DELIMITERS if d in text]
    hint = f"; columns must be separated by commas, this header seems to use {used[0]!r}" if used else ""
    return f"no churn CSV header: none of the {len(REQUIRED_COLUMNS)} feature columns is in the first line{hint}"


def _readable(text: str) -> str:
    """Text decoded with "surrogateescape" as it can be shown and stored: each undecodable byte as ``\\xNN``."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _decoded(data: bytes) -> tuple[str, UnicodeDecodeError | None]:
    """The line as text, and the first decoding error if it is not all UTF-8: its undecodable bytes are kept
    as lone surrogates, so the CSV structure (all ASCII) is read as it is and only the cells holding them
    are affected."""
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        return data.decode("utf-8", errors="surrogateescape"), exc


def _parse_header(line: _Line) -> CsvHeader:
    if line.oversized:
        raise FileFormatError(f"no churn CSV header: the first line is {line.oversized} bytes long")
    text, undecodable = _decoded(line.data)
    not_utf8 = FileFormatError(_not_utf8(line.data, undecodable)) if undecodable else None
    try:
        cells = next(csv.reader((text,), strict=True))
    except csv.Error as exc:
        raise not_utf8 or FileFormatError(f"header is not valid CSV: {exc}") from None
    positions: dict[str, int] = {}
    extra: list[str] = []
    for index, cell in enumerate(cells):
        name = normalise_header(cell)
        if name not in KNOWN_COLUMNS:
            if not_utf8 and normalise_header(_UNDECODABLE.sub("", cell)) in KNOWN_COLUMNS:
                raise not_utf8  # one of ours, in another encoding
            extra.append(_readable(cell).strip() or f"column {index + 1} (no name)")
        elif name in positions:
            raise FileFormatError(
                f"column {name!r} appears twice in the header (columns {positions[name] + 1} and {index + 1})"
            )
        else:
            positions[name] = index
    missing = [c for c in REQUIRED_COLUMNS if c not in positions]
    if missing and not_utf8:
        raise not_utf8
    if len(missing) == len(REQUIRED_COLUMNS):
        raise FileFormatError(_no_header_hint(text))
    if missing:
        raise FileFormatError(f"missing required columns: {', '.join(missing)}")
    return CsvHeader(width=len(cells), positions=positions, extra_columns=tuple(extra))


def _truncated(text: str) -> str:
    return text if len(text) <= MAX_RAW_CHARS else f"{text[:MAX_RAW_CHARS]}... ({len(text)} characters)"


def _shown(value: object) -> str:
    """A cell quoted in a reason: short, whatever the cell."""
    text = repr(value)
    return text if len(text) <= MAX_SHOWN_CHARS else f"{text[:MAX_SHOWN_CHARS]}... ({len(text)} characters)"


def _field_reasons(cells: list[str], header: CsvHeader) -> tuple[dict[str, str], dict[str, str]]:
    """Cell values by column (a blank label or customer id cell means "none"), and reasons for absent required
    cells."""
    values: dict[str, str] = {}
    reasons: dict[str, str] = {}
    for name, index in header.positions.items():
        if index >= len(cells):
            if name not in OPTIONAL_COLUMNS:
                reasons[name] = f"{name}: no cell (the row is too short)"
            continue
        cell = cells[index].strip(PADDING)
        if cell:
            values[name] = cell
        elif name not in OPTIONAL_COLUMNS:
            reasons[name] = f"{name}: blank cell"
    return values, reasons


def _undecodable_cells(values: dict[str, str]) -> dict[str, str]:
    """Reasons for the used cells that hold bytes that are not UTF-8."""
    reasons: dict[str, str] = {}
    for name, value in values.items():
        if found := _UNDECODABLE.search(value):
            reasons[name] = f"{name}: not valid UTF-8: byte 0x{ord(found.group()) - 0xDC00:02x}"
    return reasons


def _non_plain_numbers(values: dict[str, str]) -> dict[str, str]:
    """Reasons for the cells not written in plain decimal notation (see the module docstring)."""
    reasons: dict[str, str] = {}
    for name, value in values.items():
        if name not in _SYNTAX:
            continue
        pattern, reason = _SYNTAX[name]
        if not pattern.fullmatch(value):
            reasons[name] = f"{name}: {reason.format(_shown(value))}"
    return reasons


def _ordered(reasons: dict[str, str]) -> list[str]:
    order = {name: i for i, name in enumerate(KNOWN_COLUMNS)}
    return [reasons[k] for k in sorted(reasons, key=lambda k: order.get(k, -1))]


def parse_row(line_data: bytes, *, row: int, line: int, header: CsvHeader) -> SplitRow:
    """One data line to a valid row or a rejection listing every problem found in it.

    A line of plain cells (no quotes, no padding, plain numbers in the used columns), nearly every line,
    is split at its commas; any other line goes through the CSV reader and every check.
    """
    try:
        text = line_data.decode("utf-8")
    except UnicodeDecodeError as exc:
        text = line_data.decode("utf-8", errors="surrogateescape")
        return _checked_row(text, row=row, line=line, header=header, undecodable=(line_data, exc))
    if header.plain_row.fullmatch(text):
        cells = text.split(",")
        try:
            customer = CustomerRow.model_validate({name: cells[index] for name, index in header.positions.items()})
        except ValidationError:
            pass
        else:
            return ValidRow(row=row, line=line, customer=customer)
    return _checked_row(text, row=row, line=line, header=header)


def _checked_row(
    text: str,
    *,
    row: int,
    line: int,
    header: CsvHeader,
    undecodable: tuple[bytes, UnicodeDecodeError] | None = None,
) -> SplitRow:
    reasons: dict[str, str] = {}
    raw = _truncated(_readable(text) if undecodable else text)
    try:
        cells = next(csv.reader((text,), strict=True))
    except csv.Error as exc:
        problems = [f"malformed CSV: {exc}"]
        if undecodable:
            data, error = undecodable
            problems.insert(0, f"not valid UTF-8: byte 0x{data[error.start]:02x} at position {error.start}")
        return RejectedRow(row=row, line=line, raw=raw, reasons=problems)
    if len(cells) != header.width:
        reasons["cells"] = f"row has {len(cells)} cells, the header has {header.width}"
    values, cell_reasons = _field_reasons(cells, header)
    reasons |= cell_reasons
    unreadable = _undecodable_cells(values) if undecodable else {}
    unreadable |= _non_plain_numbers({k: v for k, v in values.items() if k not in unreadable})
    reasons |= unreadable
    try:
        customer = CustomerRow.model_validate({k: v for k, v in values.items() if k not in unreadable})
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            name = str(error["loc"][0]) if error["loc"] else "row"
            if error["type"] != "missing":
                reasons[name] = f"{name}: {error['msg']} (got {_shown(error['input'])})"
        customer = None
    if reasons or customer is None:
        return RejectedRow(row=row, line=line, raw=raw, reasons=_ordered(reasons))
    return ValidRow(row=row, line=line, customer=customer)


class CsvSplit:
    """A churn CSV opened for splitting: the header is checked on construction, rows come on iteration.

    Iterate once; :attr:`counts` holds the totals so far (``rows_read == rows_valid + rows_rejected``).
    """

    def __init__(
        self, source: ByteSource, *, chunk_bytes: int = CHUNK_BYTES, max_line_bytes: int = MAX_LINE_BYTES
    ) -> None:
        self.max_line_bytes = max_line_bytes
        self.counts = SplitCounts()
        self._lines = _lines(self._without_bom(_chunks(source, chunk_bytes)), max_line_bytes=max_line_bytes)
        self.header = self._read_header()

    @staticmethod
    def _without_bom(chunks: Iterator[bytes]) -> Iterator[bytes]:
        head = b""
        for chunk in chunks:
            head += chunk
            if len(head) >= len(UTF8_BOM):
                break
        yield head.removeprefix(UTF8_BOM)
        yield from chunks

    def _read_header(self) -> CsvHeader:
        for line in self._lines:
            if line.oversized or line.data.strip():
                return _parse_header(line)
        raise FileFormatError("empty file: no header line")

    def _rejected_oversized(self, line: _Line, row: int) -> RejectedRow:
        raw = _truncated(line.data.decode("utf-8", errors="backslashreplace"))
        reason = f"row is {line.oversized} bytes long, more than the {self.max_line_bytes} allowed"
        return RejectedRow(row=row, line=line.number, raw=raw, reasons=[reason])

    def __iter__(self) -> Iterator[SplitRow]:
        counts = self.counts
        for line in self._lines:
            if not line.oversized and not line.data.strip():
                counts.blank_lines += 1
                continue
            counts.rows_read += 1
            if line.oversized:
                result: SplitRow = self._rejected_oversized(line, counts.rows_read)
            else:
                result = parse_row(line.data, row=counts.rows_read, line=line.number, header=self.header)
            if isinstance(result, ValidRow):
                counts.rows_valid += 1
            else:
                counts.rows_rejected += 1
            yield result


def split_csv(source: ByteSource, *, chunk_bytes: int = CHUNK_BYTES, max_line_bytes: int = MAX_LINE_BYTES) -> CsvSplit:
    """Open ``source`` for splitting: a binary stream, or an iterable of byte chunks of any size (lines
    count as chunks only with their line endings kept, e.g. ``iter_lines(keepends=True)``)."""
    return CsvSplit(source, chunk_bytes=chunk_bytes, max_line_bytes=max_line_bytes)
