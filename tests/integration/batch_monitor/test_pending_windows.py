"""Which windows are pending, computed in SQL on SQLite and Postgres."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from batch_monitor.evaluation import EvaluationStatus, WindowEvaluation
from batch_monitor.store import store_evaluation
from batch_monitor.window_data import load_window
from batch_monitor.windows import Window, pending_windows
from churn_common.database import get_engine, predictions
from tests.factories import TYPICAL_FEATURES

pytestmark = pytest.mark.integration

MINUTE = 60
T0 = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)


@pytest.fixture
def engine(database_url: str) -> Engine:
    return get_engine(database_url)


@pytest.fixture
def put_rows(engine: Engine) -> Callable[..., None]:
    """Insert predictions at the given event times (features are irrelevant to window arithmetic)."""
    counter = iter(range(1_000_000))

    def put(*times: datetime, version: str = "1", model: str = "XGBoostChurnModel", record: str | None = None) -> None:
        rows = []
        for moment in times:
            n = next(counter)
            rows.append(
                {
                    **TYPICAL_FEATURES,
                    "event_id": f"e{n}",
                    "record_id": record or f"r{n}",
                    "source_id": "s",
                    "row": n + 1,
                    "event_time": moment,
                    "arrival_time": moment,
                    "scored_at": moment + timedelta(seconds=n),
                    "model_name": model,
                    "model_version": version,
                    "churn_probability": 0.2,
                    "churn_prediction": 0,
                    "label": None,
                }
            )
        with engine.begin() as connection:
            connection.execute(predictions.insert(), rows)

    return put


def summary(engine: Engine, now: datetime, *, lateness: float = 0, **options: object) -> list[tuple[str, dict]]:
    found = pending_windows(engine, window_seconds=MINUTE, now=now, lateness_seconds=lateness, **options)  # type: ignore[arg-type]
    return [(p.window.label, dict(p.rows_by_version)) for p in found]


def test_rows_are_bucketed_by_event_time_into_aligned_windows(engine, put_rows) -> None:  # type: ignore[no-untyped-def]
    # GIVEN rows at a window's first instant, its last microsecond, the next window's start, and two minutes on
    put_rows(T0, T0 + timedelta(seconds=59, microseconds=999999), T0 + timedelta(minutes=1), T0 + timedelta(minutes=3))
    # WHEN pending windows are listed well after all of them closed
    # THEN each row counts in its own aligned window, oldest first, empty windows absent
    assert summary(engine, T0 + timedelta(hours=1)) == [
        ("2026-11-26T06:00:00Z", {"1": 2}),
        ("2026-11-26T06:01:00Z", {"1": 1}),
        ("2026-11-26T06:03:00Z", {"1": 1}),
    ]


def test_windows_still_within_their_lateness_are_not_pending(engine, put_rows) -> None:  # type: ignore[no-untyped-def]
    # GIVEN rows in two consecutive windows
    put_rows(T0 + timedelta(seconds=10), T0 + timedelta(seconds=70))
    # WHEN listed 29 s after the second window's end with a 30 s lateness THEN only the first is pending
    second_end = T0 + timedelta(minutes=2)
    assert [label for label, _ in summary(engine, second_end + timedelta(seconds=29), lateness=30)] == [
        "2026-11-26T06:00:00Z"
    ]
    # AND one second later both are
    assert len(summary(engine, second_end + timedelta(seconds=30), lateness=30)) == 2


def test_versions_are_counted_apart_and_evaluated_ones_drop_out(engine, put_rows) -> None:  # type: ignore[no-untyped-def]
    # GIVEN one window with rows of versions 1 and 2, and rows of another model
    put_rows(T0, T0 + timedelta(seconds=5), version="1")
    put_rows(T0 + timedelta(seconds=7), version="2")
    put_rows(T0, model="SomeOtherModel")
    assert summary(engine, T0 + timedelta(hours=1), model_name="XGBoostChurnModel") == [
        ("2026-11-26T06:00:00Z", {"1": 2, "2": 1})
    ]
    # WHEN version 1 of that window is recorded as evaluated
    window = Window(T0, T0 + timedelta(minutes=1))
    done = WindowEvaluation(window, "1", EvaluationStatus.TOO_FEW_ROWS, 2)
    store_evaluation(engine, done, report_uri=None, evaluated_at=T0 + timedelta(hours=1))
    # THEN only version 2 is still pending there
    assert summary(engine, T0 + timedelta(hours=1), model_name="XGBoostChurnModel") == [
        ("2026-11-26T06:00:00Z", {"2": 1})
    ]


def test_since_bounds_the_scan(engine, put_rows) -> None:  # type: ignore[no-untyped-def]
    put_rows(T0, T0 + timedelta(minutes=10))
    assert [label for label, _ in summary(engine, T0 + timedelta(hours=1), since=T0 + timedelta(minutes=5))] == [
        "2026-11-26T06:10:00Z"
    ]


def test_nothing_pending_in_an_empty_table(engine) -> None:  # type: ignore[no-untyped-def]
    assert summary(engine, T0) == []


def test_a_window_is_read_with_each_source_record_once(engine, put_rows) -> None:  # type: ignore[no-untyped-def]
    # GIVEN a record scored twice (its file was sent again), another record, and a row just outside the window
    put_rows(T0 + timedelta(seconds=1), T0 + timedelta(seconds=2), record="file-a:1")
    put_rows(T0 + timedelta(seconds=3))
    put_rows(T0 + timedelta(minutes=1))
    # WHEN the window is loaded THEN two rows: the duplicate once, the outsider not at all
    frame = load_window(
        engine, window=Window(T0, T0 + timedelta(minutes=1)), model_name="XGBoostChurnModel", model_version="1"
    )
    assert len(frame) == 2
    assert "record_id" not in frame.columns
