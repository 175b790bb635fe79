"""Decode and validate a whole batch of wire records column-wise, with the contract's own types.

:func:`churn_common.wire.decode_batch` validates record by record. Here the batch is decoded once,
transposed, and each column is validated in one call against the same annotated types of
:data:`~churn_common.wire.WireRecordV1` (strict), which costs about half as much. Every record a column
check flags, and anything not shaped like a v1 record, is handed to ``decode_batch``: the contract
decides, and rejection reasons are its exact words. A batch whose records all have the same width (all with a
customer id, or all without one) stays on the column-wise path; only a batch that mixes both widths is sorted
out record by record.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, get_args

import orjson
from pydantic import ConfigDict, TypeAdapter, ValidationError

from churn_common.wire import (
    WIDTH_WITHOUT_CUSTOMER_ID,
    WIRE_V1_FIELDS,
    Rejection,
    WireRecordV1,
    decode_batch,
    with_customer_id_position,
)

WIDTH = len(WIRE_V1_FIELDS)
_COLUMN_CHECKS: tuple[TypeAdapter[Any], ...] = tuple(
    TypeAdapter(tuple[field_type, ...], config=ConfigDict(strict=True))  # type: ignore[valid-type]
    for field_type in get_args(WireRecordV1)
)
_EMPTY_COLUMNS: tuple[tuple[Any, ...], ...] = ((),) * WIDTH


@dataclass(frozen=True, slots=True)
class DecodedColumns:
    """The valid records as columns in :data:`WIRE_V1_FIELDS` order, their positions in the input, and
    every rejected position with its reason."""

    indices: list[int]
    columns: tuple[tuple[Any, ...], ...]
    rejections: list[Rejection]

    def __len__(self) -> int:
        return len(self.indices)

    def column(self, name: str) -> tuple[Any, ...]:
        return self.columns[WIRE_V1_FIELDS.index(name)]


def _flagged_rows(columns: Sequence[tuple[Any, ...]]) -> set[int]:
    flagged: set[int] = set()
    for check, column in zip(_COLUMN_CHECKS, columns, strict=True):
        try:
            check.validate_python(column)
        except ValidationError as exc:
            flagged.update(error["loc"][0] for error in exc.errors(include_url=False))
    return flagged


def _sort_out(payloads: Sequence[bytes]) -> tuple[list[list[Any]], list[int], list[int]]:
    """Record by record: the rows shaped like v1 records with their positions, and the other positions."""
    loads, decode_error = orjson.loads, orjson.JSONDecodeError
    rows: list[list[Any]] = []
    positions: list[int] = []
    suspects: list[int] = []
    for index, payload in enumerate(payloads):
        try:
            value = loads(payload)
        except decode_error:
            suspects.append(index)
            continue
        if type(value) is list and len(value) in (WIDTH, WIDTH_WITHOUT_CUSTOMER_ID):
            rows.append(with_customer_id_position(value))
            positions.append(index)
        else:
            suspects.append(index)
    return rows, positions, suspects


def _transpose(rows: Sequence[Sequence[Any]]) -> tuple[tuple[Any, ...], ...]:
    """Raises unless every row is a sequence of WIDTH items, or every row one without the customer id (whose
    column is then all ``None``); rows that agree on another width raise too."""
    if not rows:
        return _EMPTY_COLUMNS
    columns = tuple(zip(*rows, strict=True))
    if len(columns) == WIDTH_WITHOUT_CUSTOMER_ID:
        columns = (*columns, (None,) * len(rows))
    if len(columns) != WIDTH:
        raise ValueError(f"records of {len(columns)} fields, not {WIDTH}")
    return columns


def decode_columns(payloads: Sequence[bytes]) -> DecodedColumns:
    """Same outcome as ``decode_batch`` for every payload; a bad record never blocks the others.

    The common case (every payload a JSON array of the right length) takes no per-record Python step
    beyond the JSON decoding; anything else falls back to sorting the payloads out one by one.
    """
    loads = orjson.loads
    try:
        rows = [loads(payload) for payload in payloads]
        columns = _transpose(rows)
        positions, suspects = list(range(len(payloads))), []
    except (orjson.JSONDecodeError, TypeError, ValueError):
        rows, positions, suspects = _sort_out(payloads)
        columns = _transpose(rows)
    flagged = _flagged_rows(columns)
    if not suspects and not flagged:
        return DecodedColumns(indices=positions, columns=columns, rejections=[])

    suspects.extend(positions[i] for i in flagged)
    suspects.sort()
    rows = [with_customer_id_position(row) for i, row in enumerate(rows) if i not in flagged]
    positions = [position for i, position in enumerate(positions) if i not in flagged]
    verdict = decode_batch([payloads[i] for i in suspects])
    rows.extend(list(record) for record in verdict.records)
    positions.extend(suspects[i] for i in verdict.indices)
    rejections = [Rejection(suspects[r.index], r.reason) for r in verdict.rejections]
    return DecodedColumns(indices=positions, columns=_transpose(rows), rejections=rejections)
