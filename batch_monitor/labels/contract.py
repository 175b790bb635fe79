"""The label file contract and each row's outcome within its file: pure, no I/O.

A label file is CSV with a header holding ``record_id`` or ``customer_id`` (or both), ``churned`` (``0`` or
``1``) and ``observed_at`` (ISO-8601 with a UTC offset: a time without one names no moment). A row names its
record by ``record_id`` when it has one, else by ``customer_id`` (the customer's last prediction scored at or
before ``observed_at``: the score the outcome is about); a row with neither is rejected. Every data row gets an
outcome, so a file's counts add up to its rows: a row that breaks the contract is ``rejected`` with its reason
(kept, never dropped), one observed before the monitor's retention period is ``too_old`` (its prediction was
deleted or is about to be, and its window's figures are settled), a second row for a record id in the same file
is a ``duplicate``; the rest are candidates, whose outcome against the stored predictions (``joined``,
``duplicate`` or ``unknown``) the database decides (:mod:`batch_monitor.labels.store`). Rows by customer id are
never duplicates within their file: two observations of one customer may judge two different predictions, and
only the database knows which.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError, field_validator, model_validator

from churn_common.schema import CUSTOMER_ID_TYPE, MAX_CUSTOMER_ID_LENGTH

ID_COLUMNS: tuple[str, ...] = ("record_id", "customer_id")  # at least one; a row with both joins by record_id
REQUIRED_COLUMNS: tuple[str, ...] = ("churned", "observed_at")
CONTRACT = "record_id or customer_id, churned, observed_at"
MAX_RECORD_ID_CHARS = 80  # predictions.record_id
MAX_REASON_CHARS = 500


class LabelStatus(StrEnum):
    JOINED = "joined"
    DUPLICATE = "duplicate"
    UNKNOWN = "unknown"
    TOO_OLD = "too_old"
    REJECTED = "rejected"


def _id_text(value: object, *, name: str) -> str | None:
    """An id cell as text, ``None`` when blank; bytes that were not UTF-8 would never match a stored id."""
    text = str(value or "").strip()
    if "\ufffd" in text:
        raise ValueError(f"{name} holds bytes that are not UTF-8")
    return text or None


class LabelRow(BaseModel):
    """One valid row of a label file: the boundary between the producer of labels and the database."""

    model_config = ConfigDict(frozen=True)

    record_id: str | None = None
    customer_id: str | None = None
    churned: int
    observed_at: datetime

    @model_validator(mode="before")
    @classmethod
    def _names_a_record(cls, values: Any) -> Any:
        if isinstance(values, dict):
            given = [name for name in ID_COLUMNS if name in values] or list(ID_COLUMNS)
            if not any(str(values.get(name) or "").strip() for name in given):
                raise ValueError(f"{' and '.join(given)} {'is' if len(given) == 1 else 'are'} empty")
        return values

    @field_validator("record_id", mode="before")
    @classmethod
    def _record_id(cls, value: object) -> object:
        text = _id_text(value, name="record_id")
        if text is not None and len(text) > MAX_RECORD_ID_CHARS:
            raise ValueError(f"record_id is longer than {MAX_RECORD_ID_CHARS} characters")
        return text

    @field_validator("customer_id", mode="before")
    @classmethod
    def _customer_id(cls, value: object) -> object:
        text = _id_text(value, name="customer_id")
        if text is None:
            return None
        try:
            return _CUSTOMER_ID.validate_python(text)
        except ValidationError as error:
            raise ValueError(_reason(error)) from None

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
        # In UTC, so that it compares as a moment where the database stores times as text (SQLite).
        return moment.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class ParsedRow:
    """A data row of a file (``row`` counts from 1 after the header): its label, or why it has none."""

    row: int
    label: LabelRow | None = None
    reason: str | None = None
    record_id: str | None = None  # kept for a rejected row when it was readable
    customer_id: str | None = None


_CUSTOMER_ID: TypeAdapter[Any] = TypeAdapter(CUSTOMER_ID_TYPE)


def _reason(error: ValidationError) -> str:
    parts = [str(e.get("ctx", {}).get("error") or e["msg"]) for e in error.errors()]
    return "; ".join(parts)[:MAX_REASON_CHARS]


def parse_label_csv(text: str) -> list[ParsedRow]:
    """Every data row of a label file; a header without the required columns rejects every row."""
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    rows = [(number, fields) for number, fields in enumerate(reader, start=1) if any(f.strip() for f in fields)]
    names = [name.strip().lower() for name in header or []]
    ids = [column for column in ID_COLUMNS if column in names]
    missing = [column for column in REQUIRED_COLUMNS if column not in names]
    if not ids:
        missing.insert(0, " or ".join(ID_COLUMNS))
    if missing:
        reason = f"the header lacks {', '.join(missing)} (a label file has {CONTRACT})"
        return [ParsedRow(number, reason=reason) for number, _ in rows]
    parsed = []
    for number, fields in rows:
        if len(fields) != len(names):
            parsed.append(ParsedRow(number, reason=f"{len(fields)} fields where the header has {len(names)}"))
            continue
        values = dict(zip(names, fields, strict=True))
        try:
            label = LabelRow.model_validate({c: values[c] for c in (*ids, *REQUIRED_COLUMNS)})
            parsed.append(ParsedRow(number, label=label))
        except ValidationError as error:
            record_id = values.get("record_id", "").strip()[:MAX_RECORD_ID_CHARS] or None
            customer_id = values.get("customer_id", "").strip()[:MAX_CUSTOMER_ID_LENGTH] or None
            parsed.append(ParsedRow(number, reason=_reason(error), record_id=record_id, customer_id=customer_id))
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
    customer_id: str | None = None  # a label by customer: record_id is None until the database binds it


def file_outcomes(rows: list[ParsedRow], *, now: datetime, retention_days: float) -> list[RowOutcome]:
    """Rejected, too old (``retention_days`` 0: nothing is), repeated in the file, or a join candidate.

    The first valid row of a record id is the candidate; later ones are duplicates whatever they say, so a
    file cannot join two different labels for one record. Rows by customer id alone are all candidates (see the
    module docstring)."""
    oldest = now - timedelta(days=retention_days) if retention_days > 0 else None
    first_row: dict[str, int] = {}
    outcomes = []
    for parsed in rows:
        label = parsed.label
        if label is None:
            outcomes.append(
                RowOutcome(
                    parsed.row,
                    parsed.record_id,
                    None,
                    None,
                    LabelStatus.REJECTED,
                    parsed.reason,
                    customer_id=parsed.customer_id,
                )
            )
            continue
        values = (parsed.row, label.record_id, label.churned, label.observed_at)
        by_customer = {"customer_id": label.customer_id}
        if oldest is not None and label.observed_at < oldest:
            reason = f"observed before the retention period ({oldest.isoformat()})"
            outcomes.append(RowOutcome(*values, LabelStatus.TOO_OLD, reason, **by_customer))
        elif label.record_id is not None and label.record_id in first_row:
            reason = f"record id already in row {first_row[label.record_id]} of this file"
            outcomes.append(RowOutcome(*values, LabelStatus.DUPLICATE, reason, **by_customer))
        else:
            if label.record_id is not None:
                first_row[label.record_id] = parsed.row
            outcomes.append(RowOutcome(*values, None, **by_customer))
    return outcomes
