"""The ``retraining_runs`` table: one row per triggering set of windows, claimed before any training.

The row is inserted first (status ``running``); its unique key (model, serving version, end of the last
triggering window) makes a second claim of the same windows fail, so a re-run, an overlapping run or a
second replica never retrains for them again. The outcome replaces the status when the run ends.

With live promotion (``PROMOTION_LIVE_WINDOWS`` > 0) a challenger that won on the holdout leaves its row
``challenging``; the monitor's live check finishes it ``promoted`` or ``retired`` with the live evidence, or
``superseded`` when the challenger alias moved on before a decision. A challenger whose alias was set by
hand has no row of the retraining: the live decision on it is recorded as a row of its own (origin
``alias``), keyed by the live windows judged, which never counts as windows used by a retraining.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Engine, func, or_, select, update
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
    CHALLENGING = "challenging"
    RETIRED = "retired"
    SUPERSEDED = "superseded"


class Origin(StrEnum):
    RETRAINING = "retraining"
    ALIAS = "alias"


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
    origin: str | None = None
    live_first_window_start: datetime | None = None
    live_last_window_end: datetime | None = None
    live_serving_f1: float | None = None
    live_challenger_f1: float | None = None

    @classmethod
    def from_row(cls, row: Any) -> RetrainingRecord:
        values = dict(row._mapping)
        for name in (
            "first_window_start",
            "last_window_end",
            "started_at",
            "finished_at",
            "live_first_window_start",
            "live_last_window_end",
        ):
            if values[name] is not None:
                values[name] = as_utc(values[name])
        return cls(**values)


def used_until(engine: Engine, *, model_name: str, serving_version: str) -> datetime | None:
    """End of the last window an earlier retraining of this version was triggered by."""
    query = select(func.max(retraining_runs.c.last_window_end)).where(
        retraining_runs.c.model_name == model_name,
        retraining_runs.c.serving_version == serving_version,
        or_(retraining_runs.c.origin.is_(None), retraining_runs.c.origin != str(Origin.ALIAS)),
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
        "origin": str(Origin.RETRAINING),
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


def open_challenges(engine: Engine, *, model_name: str) -> list[RetrainingRecord]:
    """Runs whose challenger is still on live trial, oldest first."""
    query = (
        select(retraining_runs)
        .where(retraining_runs.c.model_name == model_name, retraining_runs.c.status == str(RunStatus.CHALLENGING))
        .order_by(retraining_runs.c.started_at, retraining_runs.c.id)
    )
    with engine.connect() as connection:
        return [RetrainingRecord.from_row(row) for row in connection.execute(query)]


def record_alias_decision(
    engine: Engine,
    *,
    model_name: str,
    serving_version: str,
    challenger_version: str,
    first_window_start: datetime,
    last_window_end: datetime,
    n_windows: int,
    status: RunStatus,
    reason: str,
    **figures: Any,
) -> RetrainingRecord | None:
    """The finished row of a live decision on a challenger no retraining produced; ``None`` when a row with
    its key (same serving version and last window) exists already."""
    now = datetime.now(tz=UTC)
    row = {
        "model_name": model_name,
        "serving_version": serving_version,
        "first_window_start": first_window_start,
        "last_window_end": last_window_end,
        "n_windows": n_windows,
        "status": str(status),
        "reason": reason,
        "challenger_version": challenger_version,
        "started_at": now,
        "finished_at": now,
        "origin": str(Origin.ALIAS),
        **figures,
    }
    try:
        with engine.begin() as connection:
            run_id = int(connection.execute(retraining_runs.insert().returning(retraining_runs.c.id), row).scalar_one())
    except IntegrityError:
        return None
    return read_run(engine, run_id)
