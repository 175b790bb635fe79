"""The ``retraining_runs`` table: one row per triggering set of windows, claimed before any training.

The row is inserted first (status ``running``); its unique key (model, serving version, end of the last
triggering window) makes a second claim of the same windows fail, so a re-run, an overlapping run or a
second replica never retrains for them again. The outcome replaces the status when the run ends.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Engine, func, select, update
from sqlalchemy.exc import IntegrityError

from batch_monitor.core import as_utc
from batch_monitor.retraining.decision import RetrainingDecision
from churn_common.database import retraining_runs


class RunStatus(StrEnum):
    RUNNING = "running"
    PROMOTED = "promoted"
    KEPT = "kept"
    SKIPPED = "skipped"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class RetrainingRecord:
    id: int
    model_name: str
    serving_version: str
    first_window_start: datetime
    last_window_end: datetime
    n_windows: int
    status: str
    reason: str | None
    n_train_rows: int | None
    n_holdout_rows: int | None
    challenger_version: str | None
    challenger_f1: float | None
    serving_f1: float | None
    started_at: datetime
    finished_at: datetime | None

    @classmethod
    def from_row(cls, row: Any) -> RetrainingRecord:
        values = dict(row._mapping)
        for name in ("first_window_start", "last_window_end", "started_at", "finished_at"):
            if values[name] is not None:
                values[name] = as_utc(values[name])
        return cls(**values)


def used_until(engine: Engine, *, model_name: str, serving_version: str) -> datetime | None:
    """End of the last window an earlier retraining of this version was triggered by."""
    query = select(func.max(retraining_runs.c.last_window_end)).where(
        retraining_runs.c.model_name == model_name, retraining_runs.c.serving_version == serving_version
    )
    with engine.connect() as connection:
        value = connection.execute(query).scalar_one_or_none()
    return None if value is None else as_utc(value)


def claim(engine: Engine, decision: RetrainingDecision, *, model_name: str, now: datetime | None = None) -> int | None:
    """The new run's id, or ``None`` when these windows were claimed before."""
    row = {
        "model_name": model_name,
        "serving_version": decision.serving_version,
        "first_window_start": decision.first_window_start,
        "last_window_end": decision.last_window_end,
        "n_windows": len(decision.windows),
        "status": str(RunStatus.RUNNING),
        "started_at": now or datetime.now(tz=UTC),
    }
    try:
        with engine.begin() as connection:
            return int(connection.execute(retraining_runs.insert().returning(retraining_runs.c.id), row).scalar_one())
    except IntegrityError:
        return None


def finish(engine: Engine, run_id: int, *, status: RunStatus, reason: str, **figures: Any) -> RetrainingRecord:
    with engine.begin() as connection:
        connection.execute(
            update(retraining_runs)
            .where(retraining_runs.c.id == run_id)
            .values(status=str(status), reason=reason, finished_at=datetime.now(tz=UTC), **figures)
        )
    return read_run(engine, run_id)


def read_run(engine: Engine, run_id: int) -> RetrainingRecord:
    with engine.connect() as connection:
        row = connection.execute(select(retraining_runs).where(retraining_runs.c.id == run_id)).one()
    return RetrainingRecord.from_row(row)


def read_runs(engine: Engine, *, model_name: str | None = None) -> list[RetrainingRecord]:
    """Every recorded run, oldest first."""
    query = select(retraining_runs).order_by(retraining_runs.c.started_at, retraining_runs.c.id)
    if model_name is not None:
        query = query.where(retraining_runs.c.model_name == model_name)
    with engine.connect() as connection:
        return [RetrainingRecord.from_row(row) for row in connection.execute(query)]
