"""Which windows are pending, computed in SQL on SQLite and Postgres."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from batch_monitor.evaluation import EvaluationStatus, WindowEvaluation
from batch_monitor.store import store_evaluation
from batch_monitor.window_data import load_window
from batch_monitor.windows import Window, pending_windows, scan_start

pytestmark = pytest.mark.integration

MINUTE = 60
T0 = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)


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


def test_the_scan_starts_a_retry_period_before_the_newest_evaluated_window(engine, put_rows) -> None:  # type: ignore[no-untyped-def]
    # GIVEN rows in ten one-minute windows, all evaluated except window 2 (failed long ago) and 7 (failed lately)
    put_rows(*(T0 + timedelta(minutes=i, seconds=5) for i in range(10)))
    assert scan_start(engine, retry_seconds=180) is None  # nothing evaluated yet: scan everything
    for i in (0, 1, 3, 4, 5, 6, 8, 9):
        window = Window(T0 + timedelta(minutes=i), T0 + timedelta(minutes=i + 1))
        done = WindowEvaluation(window, "1", EvaluationStatus.TOO_FEW_ROWS, 1)
        store_evaluation(engine, done, report_uri=None, evaluated_at=T0 + timedelta(hours=1))
    # AND new rows in two windows after them
    put_rows(T0 + timedelta(minutes=10), T0 + timedelta(minutes=11))

    # WHEN the scan starts three minutes before the newest evaluated window (9)
    start = scan_start(engine, retry_seconds=180)
    pending = summary(engine, T0 + timedelta(hours=1), since=start)

    # THEN the recent failure and the new windows are pending; the failure overtaken long ago is not scanned
    assert start == T0 + timedelta(minutes=6)
    assert [label for label, _ in pending] == ["2026-11-26T06:07:00Z", "2026-11-26T06:10:00Z", "2026-11-26T06:11:00Z"]
    assert "2026-11-26T06:02:00Z" in [label for label, _ in summary(engine, T0 + timedelta(hours=1))]


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
