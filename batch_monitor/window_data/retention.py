"""Retention: the monitor deletes predictions and rejected records older than ``PREDICTIONS_RETENTION_DAYS``.

Every scored record is a row of ``predictions`` (about 32 GB a day at 1,000 records/s: infra/capacity.md),
so without a limit the database fills up. What the dashboards and alerts need from older windows is kept:
window results, per-column metrics, alerts, the reports in S3 (they expire by their own rule).

Rows of a window that is not evaluated yet are never deleted, whatever their age: the cutoff stops at the
oldest window still open or whose evaluation failed this run. Deletes go in batches of ``PRUNE_BATCH_ROWS``,
each its own transaction, so the scorer's writes never wait long on them. A file dropped again after its
records were deleted is scored again (the scorer recognises a record by what is stored). At sustained high
rates, daily partitions dropped whole would be cheaper than deletes (infra/capacity.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Column, Engine, Table, delete, select

from churn_common.database import predictions, rejected_records

PRUNE_BATCH_ROWS = 50_000


@dataclass(frozen=True, slots=True)
class Pruned:
    cutoff: datetime
    predictions: int
    rejected_records: int


def retention_cutoff(*, now: datetime, retention_days: float, keep_from: Iterable[datetime]) -> datetime | None:
    """Rows before this moment may go; ``None`` when retention is off (0 days). ``keep_from``: starts of
    windows whose rows must stay."""
    if retention_days <= 0:
        return None
    return min([now - timedelta(days=retention_days), *keep_from])


@dataclass(frozen=True, slots=True)
class _Aging:
    """How a table's old rows are found (its time column) and deleted a batch at a time (its key)."""

    table: Table
    key: Column[Any]
    moment: Column[Any]


_PRUNED: Mapping[str, _Aging] = {
    "predictions": _Aging(predictions, predictions.c.event_id, predictions.c.event_time),
    "rejected_records": _Aging(rejected_records, rejected_records.c.id, rejected_records.c.rejected_at),
}


def _delete_before(engine: Engine, aging: _Aging, *, cutoff: datetime, batch: int) -> int:
    victims = select(aging.key).where(aging.moment < cutoff).limit(batch)
    statement = delete(aging.table).where(aging.key.in_(victims))
    deleted = 0
    while True:
        with engine.begin() as connection:
            count = connection.execute(statement).rowcount
        deleted += count
        if count < batch:
            return deleted


def prune(engine: Engine, *, cutoff: datetime, batch_rows: int = PRUNE_BATCH_ROWS) -> Pruned:
    """Delete the predictions with an event time and the rejected records with a rejection time before ``cutoff``."""
    deleted = {name: _delete_before(engine, aging, cutoff=cutoff, batch=batch_rows) for name, aging in _PRUNED.items()}
    return Pruned(cutoff, **deleted)
