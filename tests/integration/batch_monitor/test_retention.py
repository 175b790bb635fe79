"""Retention on SQLite and Postgres: old predictions and rejected records go in batches, and the flow keeps the
rows of every window it has not evaluated."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, func, insert, select

from batch_monitor.core import as_utc
from batch_monitor.flow import WindowsFailedError, monitor_windows
from batch_monitor.window_data.retention import prune
from churn_common.database import monitoring_windows, predictions, rejected_records
from tests.integration.batch_monitor.conftest import closed_after, window_at

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)


def _count(engine: Engine, table) -> int:  # type: ignore[no-untyped-def]
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(table)).scalar_one())


def _put_rejections(engine: Engine, *moments: datetime) -> None:
    rows = [
        {"event_id": f"bad{n}", "stage": "scorer", "reason": "wrong width", "payload": "x", "rejected_at": moment}
        for n, moment in enumerate(moments)
    ]
    with engine.begin() as connection:
        connection.execute(insert(rejected_records), rows)


def test_rows_before_the_cutoff_are_deleted_in_batches_and_the_rest_kept(engine, put_rows) -> None:  # type: ignore[no-untyped-def]
    # GIVEN seven predictions and two rejections a day before the cutoff, three predictions and one after it
    cutoff = T0 + timedelta(days=1)
    put_rows(*(T0 + timedelta(minutes=i) for i in range(7)))
    put_rows(*(cutoff + timedelta(minutes=i) for i in range(3)))
    _put_rejections(engine, T0, T0 + timedelta(hours=1), cutoff + timedelta(seconds=1))

    # WHEN pruned in batches of two
    pruned = prune(engine, cutoff=cutoff, batch_rows=2)

    # THEN every old row is gone, counted once, and the newer ones are all there
    assert (pruned.predictions, pruned.rejected_records) == (7, 2)
    assert (_count(engine, predictions), _count(engine, rejected_records)) == (3, 1)
    with engine.connect() as connection:
        oldest = connection.execute(select(func.min(predictions.c.event_time))).scalar_one()
    assert as_utc(oldest) == cutoff
    # AND pruning again finds nothing
    assert prune(engine, cutoff=cutoff, batch_rows=2).predictions == 0


@pytest.mark.usefixtures("prefect_server")
def test_the_flow_deletes_old_rows_but_keeps_those_of_a_window_not_yet_evaluated(  # type: ignore[no-untyped-def]
    monitor_env, env, batch, put_window, engine
) -> None:
    # GIVEN a one-day retention; a window three days old that fails (unknown model version), one evaluated
    # window two days old, and a window that just closed
    env(PREDICTIONS_RETENTION_DAYS="1")
    broken, old, recent = window_at(0), window_at(1), window_at(24 * 12 * 2)
    put_window(batch(n_rows=60, seed=60, with_label=False), window=broken, version="999")
    put_window(batch(n_rows=60, seed=61, with_label=False), window=old)
    put_window(batch(n_rows=60, seed=62, with_label=False), window=recent)

    # WHEN the monitor runs two days later
    with pytest.raises(WindowsFailedError):
        monitor_windows(now=closed_after(recent))

    # THEN the broken window's rows stay for its retry, and only rows older than it could have gone
    with engine.connect() as connection:
        kept = connection.execute(
            select(predictions.c.model_version, func.count()).group_by(predictions.c.model_version)
        ).all()
        evaluated = connection.execute(select(monitoring_windows.c.window_start)).scalars().all()
    assert sorted(as_utc(s) for s in evaluated) == [old.start, recent.start]
    assert dict(kept) == {"999": 60, "1": 120}

    # WHEN the broken window's version is gone from the data (say, deleted by hand) and the monitor runs again
    with engine.begin() as connection:
        connection.execute(predictions.delete().where(predictions.c.model_version == "999"))
    summary = monitor_windows(now=closed_after(recent))

    # THEN the evaluated window older than a day is deleted, its results kept, the recent window untouched
    assert summary.pruned is not None
    assert summary.pruned.predictions == 60
    assert summary.pruned.cutoff == closed_after(recent) - timedelta(days=1)
    with engine.connect() as connection:
        remaining = connection.execute(select(predictions.c.event_time)).scalars().all()
    assert len(remaining) == 60
    assert all(recent.start <= as_utc(t) < recent.end for t in remaining)
    assert _count(engine, monitoring_windows) == 2
