"""Which windows are pending, computed in SQL on SQLite and Postgres."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from batch_monitor.core import EvaluationStatus, Window, WindowEvaluation
from batch_monitor.window_data.reading import load_window
from batch_monitor.window_data.store import store_evaluation
from batch_monitor.window_data.windows import pending_windows, scan_start

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


def evaluated(engine: Engine, window: Window, n_rows: int, version: str = "1") -> None:
    """Record ``window`` as evaluated on ``n_rows`` records, as a monitor run would have."""
    done = WindowEvaluation(window, version, EvaluationStatus.TOO_FEW_ROWS, n_rows)
    store_evaluation(engine, done, report_uri=None, evaluated_at=T0 + timedelta(hours=1))


def reopened(engine: Engine, now: datetime, **options: object) -> list[tuple[str, dict, dict]]:
    found = pending_windows(engine, window_seconds=MINUTE, now=now, lateness_seconds=0, **options)  # type: ignore[arg-type]
    return [(p.window.label, dict(p.rows_by_version), dict(p.evaluated_rows_by_version)) for p in found]


def test_a_window_that_received_rows_after_its_evaluation_is_pending_again(engine, put_rows) -> None:  # type: ignore[no-untyped-def]
    # GIVEN a window evaluated on its two rows, and a later window evaluated with its one row
    first, second = Window(T0, T0 + timedelta(minutes=1)), Window(T0 + timedelta(minutes=1), T0 + timedelta(minutes=2))
    put_rows(T0 + timedelta(seconds=1), T0 + timedelta(seconds=2), second.start)
    evaluated(engine, first, 2)
    evaluated(engine, second, 1)
    assert reopened(engine, T0 + timedelta(hours=1)) == []
    # WHEN three more rows with event times in the first window are stored (the rest of a long file)
    put_rows(*(T0 + timedelta(seconds=3 + i) for i in range(3)))
    # THEN the first window is pending again with all five rows, and says its evaluation had counted two
    assert reopened(engine, T0 + timedelta(hours=1)) == [("2026-11-26T06:00:00Z", {"1": 5}, {"1": 2})]


def test_only_the_version_that_received_rows_is_reopened(engine, put_rows) -> None:  # type: ignore[no-untyped-def]
    # GIVEN a window evaluated for versions 1 and 2 on all their rows
    window = Window(T0, T0 + timedelta(minutes=1))
    put_rows(T0, T0 + timedelta(seconds=1), version="1")
    put_rows(T0 + timedelta(seconds=2), version="2")
    evaluated(engine, window, 2, version="1")
    evaluated(engine, window, 1, version="2")
    # WHEN version 2 scores another record there THEN only version 2 is pending again
    put_rows(T0 + timedelta(seconds=3), version="2")
    assert reopened(engine, T0 + timedelta(hours=1)) == [("2026-11-26T06:00:00Z", {"2": 2}, {"2": 1})]


def test_copies_of_records_already_counted_do_not_reopen_a_window(engine, put_rows) -> None:  # type: ignore[no-untyped-def]
    # GIVEN a window evaluated on its two records
    window = Window(T0, T0 + timedelta(minutes=1))
    put_rows(T0 + timedelta(seconds=1), record="file-a:1")
    put_rows(T0 + timedelta(seconds=2), record="file-a:2")
    evaluated(engine, window, 2)
    # WHEN a copy of one of them is stored (a database from before the scorer skipped stored records)
    put_rows(T0 + timedelta(seconds=3), record="file-a:1")
    # THEN the window is not re-opened: three rows, but still the two records it counted
    assert reopened(engine, T0 + timedelta(hours=1)) == []
    # AND a new record does re-open it
    put_rows(T0 + timedelta(seconds=4), record="file-a:3")
    assert reopened(engine, T0 + timedelta(hours=1)) == [("2026-11-26T06:00:00Z", {"1": 4}, {"1": 2})]


def test_a_window_that_lost_rows_after_its_evaluation_is_not_reopened(engine, put_rows) -> None:  # type: ignore[no-untyped-def]
    # GIVEN a window evaluated on more records than it holds now (retention deleted some since)
    put_rows(T0 + timedelta(seconds=1))
    evaluated(engine, Window(T0, T0 + timedelta(minutes=1)), 5)
    # THEN it is not pending
    assert reopened(engine, T0 + timedelta(hours=1)) == []


def test_reopening_is_bounded_by_the_scan_start(engine, put_rows) -> None:  # type: ignore[no-untyped-def]
    # GIVEN an evaluated window that received another row, and a newer evaluated window four minutes later
    put_rows(T0 + timedelta(seconds=1), T0 + timedelta(minutes=4))
    evaluated(engine, Window(T0, T0 + timedelta(minutes=1)), 1)
    evaluated(engine, Window(T0 + timedelta(minutes=4), T0 + timedelta(minutes=5)), 1)
    put_rows(T0 + timedelta(seconds=2))
    # WHEN the scan starts five minutes before the newest evaluated window THEN the window is re-opened
    now = T0 + timedelta(hours=1)
    assert [label for label, *_ in reopened(engine, now, since=scan_start(engine, retry_seconds=300))] == [
        "2026-11-26T06:00:00Z"
    ]
    # AND when it starts three minutes before, the window is past the horizon and stays as evaluated
    assert reopened(engine, now, since=scan_start(engine, retry_seconds=180)) == []
