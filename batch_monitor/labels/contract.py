"""The label file contract and each row's outcome within its file: pure, no I/O.

A label file is CSV with a header holding ``record_id``, ``churned`` (``0`` or ``1``) and ``observed_at``
(ISO-8601 with a UTC offset: a time without one names no moment). Every data row gets an outcome, so a file's
counts add up to its rows: a row that breaks the contract is ``rejected`` with its reason (kept, never
dropped), one observed before the monitor's retention period is ``too_old`` (its prediction was deleted or is
about to be, and its window's figures are settled), a second row for a record id in the same file is a
``duplicate``; the rest are candidates, whose outcome against the stored predictions (``joined``,
``duplicate`` or ``unknown``) the database decides (:mod:`batch_monitor.labels.store`).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

REQUIRED_COLUMNS: tuple[str, ...] = ("record_id", "churned", "observed_at")
MAX_RECORD_ID_CHARS = 80  # predictions.record_id
MAX_REASON_CHARS = 500


class LabelStatus(StrEnum):
    JOINED = "joined"
    DUPLICATE = "duplicate"
    UNKNOWN = "unknown"
    TOO_OLD = "too_old"
    REJECTED = "rejected"


class LabelRow(BaseModel):
    """One valid row of a label file: the boundary between the producer of labels and the database."""

    model_config = ConfigDict(frozen=True)

    record_id: str
    churned: int
    observed_at: datetime

    @field_validator("record_id", mode="before")
    @classmethod
    def _record_id(cls, value: object) -> object:
        text = str(value or "").strip()
        if not text:
            raise ValueError("record_id is empty")
        if len(text) > MAX_RECORD_ID_CHARS:
            raise ValueError(f"record_id is longer than {MAX_RECORD_ID_CHARS} characters")
        if "\ufffd" in text:
            raise ValueError("record_id holds bytes that are not UTF-8")
        return text

    @field_validator("churned", mode="before")
    @classmethod
    def _churned(cls, value: object) -> object:
        # Only the two digits: "yes", "1.0" or "true" would be guesses at what the producer meant.
        text = str(value or "").strip()
        if text not in ("0", "1"):
            raise ValueError(f"churned must be 0 or 1, not {text[:40]!r}")
        return int(text)

    @field_validator("observed_at", mode="before")
    @classmethod
    def _observed_at(cls, value: object) -> object:
        text = str(value or "").strip()
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"observed_at is not an ISO-8601 time: {text[:40]!r}") from None
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ValueError(f"observed_at has no UTC offset: {text[:40]!r}")
        return moment


@dataclass(frozen=True, slots=True)
class ParsedRow:
    """A data row of a file (``row`` counts from 1 after the header): its label, or why it has none."""

    row: int
    label: LabelRow | None = None
    reason: str | None = None
    record_id: str | None = None  # kept for a rejected row when it was readable


def _reason(error: ValidationError) -> str:
    parts = [str(e.get("ctx", {}).get("error") or e["msg"]) for e in error.errors()]
    return "; ".join(parts)[:MAX_REASON_CHARS]


def parse_label_csv(text: str) -> list[ParsedRow]:
    """Every data row of a label file; a header without the required columns rejects every row."""
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    rows = [(number, fields) for number, fields in enumerate(reader, start=1) if any(f.strip() for f in fields)]
    names = [name.strip().lower() for name in header or []]
    missing = [column for column in REQUIRED_COLUMNS if column not in names]
    if missing:
        reason = f"the header lacks {', '.join(missing)} (a label file has {', '.join(REQUIRED_COLUMNS)})"
        return [ParsedRow(number, reason=reason) for number, _ in rows]
    parsed = []
    for number, fields in rows:
        if len(fields) != len(names):
            parsed.append(ParsedRow(number, reason=f"{len(fields)} fields where the header has {len(names)}"))
            continue
        values = dict(zip(names, fields, strict=True))
        try:
            parsed.append(ParsedRow(number, label=LabelRow.model_validate({c: values[c] for c in REQUIRED_COLUMNS})))
        except ValidationError as error:
            record_id = values["record_id"].strip()[:MAX_RECORD_ID_CHARS] or None
            parsed.append(ParsedRow(number, reason=_reason(error), record_id=record_id))
    return parsed


@dataclass(frozen=True, slots=True)
class RowOutcome:
    """A row's outcome as far as its file decides it; ``status`` ``None``: a candidate for the join."""

    row: int
    record_id: str | None
    churned: int | None
    observed_at: datetime | None
    status: LabelStatus | None
    reason: str | None = None


def file_outcomes(rows: list[ParsedRow], *, now: datetime, retention_days: float) -> list[RowOutcome]:
    """Rejected, too old (``retention_days`` 0: nothing is), repeated in the file, or a join candidate.

    The first valid row of a record id is the candidate; later ones are duplicates whatever they say, so a
    file cannot join two different labels for one record."""
    oldest = now - timedelta(days=retention_days) if retention_days > 0 else None
    first_row: dict[str, int] = {}
    outcomes = []
    for parsed in rows:
        label = parsed.label
        if label is None:
            outcomes.append(RowOutcome(parsed.row, parsed.record_id, None, None, LabelStatus.REJECTED, parsed.reason))
            continue
        values = (parsed.row, label.record_id, label.churned, label.observed_at)
        if oldest is not None and label.observed_at < oldest:
            reason = f"observed before the retention period ({oldest.isoformat()})"
            outcomes.append(RowOutcome(*values, LabelStatus.TOO_OLD, reason))
        elif label.record_id in first_row:
            reason = f"record id already in row {first_row[label.record_id]} of this file"
            outcomes.append(RowOutcome(*values, LabelStatus.DUPLICATE, reason))
        else:
            first_row[label.record_id] = parsed.row
            outcomes.append(RowOutcome(*values, None))
    return outcomes
