"""Splits a CSV byte stream into validated customer rows and rejections, one line at a time.

Memory stays bounded whatever the input: the bytes are read in chunks, a line longer than
``max_line_bytes`` is skipped to its end (and rejected) instead of buffered, and nothing else is kept.
No field of the schema holds text, so a record never spans lines: each physical line is parsed on its
own, and a stray quote damages one row, never the rest of the file.

Problems of the file as a whole (empty, not UTF-8, no usable header) raise :class:`FileFormatError`
before any row is produced; everything after the header is a row-level outcome.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from pydantic import BaseModel, ConfigDict, ValidationError

from churn_common.schema import FEATURE_COLUMNS, LABEL_COLUMN, CustomerRow, normalise_header

CHUNK_BYTES = 64 * 1024
MAX_LINE_BYTES = 64 * 1024
MAX_RAW_CHARS = 2_000
UTF8_BOM = b"\xef\xbb\xbf"
REQUIRED_COLUMNS: tuple[str, ...] = FEATURE_COLUMNS
KNOWN_COLUMNS: tuple[str, ...] = (*FEATURE_COLUMNS, LABEL_COLUMN)
OTHER_DELIMITERS: tuple[str, ...] = (";", "\t", "|")

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


class FileFormatError(ValueError):
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
    last_position: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "last_position", max(self.positions.values()))

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
    pending = b""
    preview = b""
    discarded = 0  # bytes seen so far of a line too long to keep
    number = 0
    for chunk in chunks:
        parts = (pending + chunk).split(b"\n")
        pending = parts.pop()
        for part in parts:
            number += 1
            if discarded:
                yield _Line(number, preview, oversized=discarded + len(part))
                discarded, preview = 0, b""
            elif len(part) > max_line_bytes:
                yield _Line(number, part[:MAX_RAW_CHARS], oversized=len(part))
            else:
                yield _Line(number, part.removesuffix(b"\r"))
        if len(pending) > max_line_bytes:
            preview = preview or pending[:MAX_RAW_CHARS]
            discarded += len(pending)
            pending = b""
    if discarded:
        yield _Line(number + 1, preview, oversized=discarded + len(pending))
    elif pending:
        yield _Line(number + 1, pending.removesuffix(b"\r"))


def _not_utf8(data: bytes, error: UnicodeDecodeError) -> str:
    for signature, description in BINARY_SIGNATURES.items():
        if data.startswith(signature):
            return f"not a UTF-8 CSV file: it looks like {description}"
    return f"not a UTF-8 CSV file: byte 0x{data[error.start]:02x} at position {error.start} of the header"


def _no_header_hint(text: str) -> str:
    used = [d for d in OTHER_DELIMITERS if d in text]
    hint = f"; columns must be separated by commas, this header seems to use {used[0]!r}" if used else ""
    return f"no churn CSV header: none of the {len(REQUIRED_COLUMNS)} feature columns is in the first line{hint}"


def _parse_header(line: _Line) -> CsvHeader:
    if line.oversized:
        raise FileFormatError(f"no churn CSV header: the first line is {line.oversized} bytes long")
    try:
        text = line.data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FileFormatError(_not_utf8(line.data, exc)) from None
    try:
        cells = next(csv.reader((text,), strict=True))
    except csv.Error as exc:
        raise FileFormatError(f"header is not valid CSV: {exc}") from None
    positions: dict[str, int] = {}
    extra: list[str] = []
    for index, cell in enumerate(cells):
        name = normalise_header(cell)
        if name not in KNOWN_COLUMNS:
            extra.append(cell.strip() or f"column {index + 1} (no name)")
        elif name in positions:
            raise FileFormatError(
                f"column {name!r} appears twice in the header (columns {positions[name] + 1} and {index + 1})"
            )
        else:
            positions[name] = index
    missing = [c for c in REQUIRED_COLUMNS if c not in positions]
    if len(missing) == len(REQUIRED_COLUMNS):
        raise FileFormatError(_no_header_hint(text))
    if missing:
        raise FileFormatError(f"missing required columns: {', '.join(missing)}")
    return CsvHeader(width=len(cells), positions=positions, extra_columns=tuple(extra))


def _truncated(text: str) -> str:
    return text if len(text) <= MAX_RAW_CHARS else f"{text[:MAX_RAW_CHARS]}... ({len(text)} characters)"


def _field_reasons(cells: list[str], header: CsvHeader) -> tuple[dict[str, str], dict[str, str]]:
    """Cell values by column (blank label cells mean "no label"), and reasons for absent required cells.

    Complete rows, nearly all of them, take one comprehension: this is the splitter's innermost loop.
    """
    if len(cells) > header.last_position:
        values = {name: cells[index].strip() for name, index in header.positions.items()}
        if all(values.values()):
            return values, {}
    return _field_reasons_of_an_incomplete_row(cells, header)


def _field_reasons_of_an_incomplete_row(cells: list[str], header: CsvHeader) -> tuple[dict[str, str], dict[str, str]]:
    values: dict[str, str] = {}
    reasons: dict[str, str] = {}
    for name, index in header.positions.items():
        if index >= len(cells):
            if name != LABEL_COLUMN:
                reasons[name] = f"{name}: no cell (the row is too short)"
            continue
        cell = cells[index].strip()
        if cell:
            values[name] = cell
        elif name != LABEL_COLUMN:
            reasons[name] = f"{name}: blank cell"
    return values, reasons


def _ordered(reasons: dict[str, str]) -> list[str]:
    order = {name: i for i, name in enumerate(KNOWN_COLUMNS)}
    return [reasons[k] for k in sorted(reasons, key=lambda k: order.get(k, -1))]


def parse_row(line_data: bytes, *, row: int, line: int, header: CsvHeader) -> SplitRow:
    """One data line to a valid row or a rejection listing every problem found in it."""
    reasons: dict[str, str] = {}
    try:
        text = line_data.decode("utf-8")
    except UnicodeDecodeError as exc:
        text = line_data.decode("utf-8", errors="backslashreplace")
        reasons["row"] = f"not valid UTF-8: byte 0x{line_data[exc.start]:02x} at position {exc.start}"
    try:
        cells = next(csv.reader((text,), strict=True))
    except csv.Error as exc:
        problems = [*reasons.values(), f"malformed CSV: {exc}"]
        return RejectedRow(row=row, line=line, raw=_truncated(text), reasons=problems)
    if len(cells) != header.width:
        reasons["cells"] = f"row has {len(cells)} cells, the header has {header.width}"
    values, cell_reasons = _field_reasons(cells, header)
    reasons |= cell_reasons
    try:
        customer = CustomerRow.model_validate(values)
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            name = str(error["loc"][0]) if error["loc"] else "row"
            if error["type"] != "missing":
                reasons[name] = f"{name}: {error['msg']} (got {error['input']!r})"
        customer = None
    if reasons or customer is None:
        return RejectedRow(row=row, line=line, raw=_truncated(text), reasons=_ordered(reasons))
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
