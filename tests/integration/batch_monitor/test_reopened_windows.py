"""Windows re-opened by late rows, through the real flow: a file that streams for longer than the lateness is
first monitored in part, then re-evaluated whole on the next run, replacing the stored evaluation and
e-mailing no kind twice; every stored prediction ends in exactly one evaluated window (SQLite and Postgres)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import Engine, func, select

from batch_monitor.core import Window, as_utc
from batch_monitor.flow import monitor_windows
from batch_monitor.retraining.data import quality_history
from churn_common.database import alerts, monitoring_metrics, monitoring_windows, predictions
from stream_scorer.model import LoadedModel
from tests.integration.batch_monitor.conftest import closed_after, outbox_messages, scored_rows, window_at

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("prefect_server")]

UPLOADED_AFTER_START = timedelta(seconds=10)


def agreeing(row: dict[str, Any]) -> int:
    """Labels that agree with the model: quality stays perfect, so drift is all a drifted window crosses."""
    return int(row["churn_prediction"])


@pytest.fixture
def put_file(engine: Engine, serving_model: LoadedModel) -> Callable[..., int]:
    """Insert rows of a dropped file as the scorer stores them: every row carries the file's upload time as its
    event time; ``scored_at`` says when this part of the file was scored."""

    def put(frame: pd.DataFrame, *, window: Window, source: str, scored_at: datetime) -> int:
        uploaded = window.start + UPLOADED_AFTER_START
        rows = [
            {**row, "event_time": uploaded, "arrival_time": scored_at, "scored_at": scored_at, "label": agreeing(row)}
            for row in scored_rows(frame, model=serving_model, window=window, source=source)
        ]
        with engine.begin() as connection:
            connection.execute(predictions.insert(), rows)
        return len(rows)

    return put


def stored_windows(engine: Engine) -> list[tuple[datetime, str, int, str]]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(
                monitoring_windows.c.window_start,
                monitoring_windows.c.model_version,
                monitoring_windows.c.n_rows,
                monitoring_windows.c.status,
            ).order_by(monitoring_windows.c.window_start, monitoring_windows.c.model_version)
        ).all()
    return [(as_utc(r.window_start), r.model_version, int(r.n_rows), r.status) for r in rows]


def metric_rows(engine: Engine, window: Window) -> list[tuple[str, str | None, float | None]]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(monitoring_metrics.c.metric, monitoring_metrics.c.column, monitoring_metrics.c.value).where(
                monitoring_metrics.c.window_start == window.start
            )
        ).all()
    return [tuple(r) for r in rows]


def ledger(engine: Engine) -> list[tuple[datetime, str, str]]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(alerts.c.window_start, alerts.c.kind, alerts.c.status).order_by(alerts.c.window_start, alerts.c.kind)
        ).all()
    return [(as_utc(r.window_start), r.kind, r.status) for r in rows]


def evaluated_rows_and_predictions(engine: Engine) -> tuple[int, int]:
    """The invariant's two sides: rows of all evaluated windows, and stored predictions."""
    with engine.connect() as connection:
        evaluated = connection.execute(select(func.coalesce(func.sum(monitoring_windows.c.n_rows), 0))).scalar_one()
        stored = connection.execute(select(func.count()).select_from(predictions)).scalar_one()
    return int(evaluated), int(stored)


def test_a_file_still_streaming_when_its_window_closed_is_evaluated_again_with_all_its_rows(  # type: ignore[no-untyped-def]
    monitor_env, batch, put_file, put_window, engine
) -> None:
    # GIVEN a strongly drifted file of 500 rows dropped into window 0, of which 300 were scored before it closed
    window, next_window = window_at(0), window_at(1)
    customers = batch(n_rows=500, seed=80, drifted=True)
    put_file(customers.iloc[:300], window=window, source="big-file", scored_at=window.end)

    # WHEN the monitor runs as the window closes
    first = monitor_windows(now=closed_after(window))

    # THEN the window is evaluated on the 300 rows there are, and its drift is e-mailed
    [partial] = first.windows
    assert (partial.window_start, partial.n_rows, partial.previous_n_rows) == (window.start, 300, None)
    assert "data_drift" in partial.alerts
    e_mailed = outbox_messages(monitor_env.alerts_outbox_url)
    assert len(e_mailed) == len(partial.alerts)
    ledger_after_first = ledger(engine)
    metrics_after_first = metric_rows(engine, window)

    # WHEN the other 200 rows of the file are scored after that run, and the next window fills as usual
    put_file(
        customers.iloc[300:],
        window=window,
        source="big-file-rest",
        scored_at=closed_after(window) + timedelta(minutes=1),
    )
    put_window(batch(n_rows=100, seed=81), window=next_window, relabel=agreeing)
    second = monitor_windows(now=closed_after(next_window))

    # THEN window 0 is evaluated again, on all 500 rows, and the next window as usual
    assert [(w.window_start, w.n_rows, w.previous_n_rows) for w in second.windows] == [
        (window.start, 500, 300),
        (next_window.start, 100, None),
    ]
    assert second.windows[0].dataset_drift is True
    # AND the stored evaluation was replaced, not added to: one row per window, one row per metric
    version = partial.model_version
    assert stored_windows(engine) == [
        (window.start, version, 500, "evaluated"),
        (next_window.start, version, 100, "evaluated"),
    ]
    metrics = metric_rows(engine, window)
    assert len(metrics) == len(metrics_after_first)
    assert len({(name, column) for name, column, _ in metrics}) == len(metrics)
    assert ("n_rows", None, 500.0) in metrics
    # AND no kind is recorded or e-mailed a second time for window 0 (the clean next window ends the episode)
    assert [a.window_start for a in second.alerts_sent] == [next_window.start]
    [(subject, _)] = outbox_messages(monitor_env.alerts_outbox_url)
    assert subject.startswith("[churn-model] Recovered: data drift")
    assert [row for row in ledger(engine) if row[0] == window.start] == ledger_after_first
    # AND retraining sees each window once
    assert [w.window.start for w in quality_history(engine, model_version=version)] == [
        window.start,
        next_window.start,
    ]
    # AND every stored prediction is in exactly one evaluated window
    assert evaluated_rows_and_predictions(engine) == (600, 600)

    # WHEN the monitor runs again with nothing new THEN nothing is evaluated
    assert monitor_windows(now=closed_after(window_at(2))).windows == []


def test_a_window_first_seen_with_too_few_rows_is_judged_and_alerted_once_the_rest_arrives(  # type: ignore[no-untyped-def]
    monitor_env, batch, put_file, engine
) -> None:
    # GIVEN the first 20 rows of a strongly drifted file, all that was scored when its window closed
    window = window_at(0)
    customers = batch(n_rows=400, seed=82, drifted=True)
    put_file(customers.iloc[:20], window=window, source="slow-file", scored_at=window.end)
    # WHEN the monitor runs THEN the window is recorded as too small to judge, and nothing is e-mailed
    [partial] = monitor_windows(now=closed_after(window)).windows
    assert (partial.status, partial.n_rows, partial.alerts) == ("too_few_rows", 20, [])
    assert outbox_messages(monitor_env.alerts_outbox_url) == []

    # WHEN the rest of the file is scored and the monitor runs again
    put_file(customers.iloc[20:], window=window, source="slow-file-rest", scored_at=closed_after(window))
    second = monitor_windows(now=closed_after(window_at(1)))

    # THEN the window is judged on all 400 rows and its drift e-mailed, once
    [whole] = second.windows
    assert (whole.status, whole.n_rows, whole.previous_n_rows) == ("evaluated", 400, 20)
    assert "data_drift" in whole.alerts
    assert [a.kind for a in second.alerts_sent].count("data_drift") == 1
    assert evaluated_rows_and_predictions(engine) == (400, 400)
    assert monitor_windows(now=closed_after(window_at(2))).alerts_sent == []
