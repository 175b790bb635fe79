"""Window arithmetic: alignment to the epoch, closing with lateness, the pending-window value object, and which
windows are due (never evaluated, or re-opened by rows that came after their evaluation)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from batch_monitor.core import Window, as_utc
from batch_monitor.window_data.windows import PendingWindow, StoredRows, due_windows, first_open_bucket

FIVE_MINUTES = 300


def test_window_containing_a_moment_is_aligned_to_the_epoch() -> None:
    # GIVEN a moment in the middle of a five-minute window
    moment = datetime(2026, 11, 26, 6, 52, 13, 123000, tzinfo=UTC)
    # WHEN its window is computed
    window = Window.containing(moment, seconds=FIVE_MINUTES)
    # THEN the window starts at the previous multiple of five minutes since the epoch and lasts five minutes
    assert window.start == datetime(2026, 11, 26, 6, 50, tzinfo=UTC)
    assert window.end == datetime(2026, 11, 26, 6, 55, tzinfo=UTC)
    assert window.start.timestamp() % FIVE_MINUTES == 0
    assert window.seconds == FIVE_MINUTES


def test_window_boundaries_are_half_open() -> None:
    # GIVEN a moment exactly on a boundary
    boundary = datetime(2026, 11, 26, 6, 55, tzinfo=UTC)
    # WHEN its window and the window of the instant before are computed
    at, before = (Window.containing(m, seconds=FIVE_MINUTES) for m in (boundary, boundary - timedelta(microseconds=1)))
    # THEN the boundary opens the next window and the instant before still belongs to the previous one
    assert at.start == boundary
    assert before.end == boundary


def test_other_timezones_land_in_the_same_utc_window() -> None:
    # GIVEN the same instant written in UTC and in UTC+03:30
    utc = datetime(2026, 11, 26, 6, 52, tzinfo=UTC)
    tehran = utc.astimezone(timezone(timedelta(hours=3, minutes=30)))
    # WHEN their windows are computed THEN they are the same, with UTC bounds
    assert Window.containing(tehran, seconds=FIVE_MINUTES) == Window.containing(utc, seconds=FIVE_MINUTES)
    assert Window.containing(tehran, seconds=FIVE_MINUTES).start.tzinfo == UTC


def test_naive_datetimes_are_read_as_utc() -> None:
    assert as_utc(datetime(2026, 1, 1, 12)) == datetime(2026, 1, 1, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("seconds_after_end", "lateness", "closed"),
    [(29.999, 30, False), (30, 30, True), (0, 0, True), (-1, 0, False)],
)
def test_window_closes_after_its_lateness(seconds_after_end: float, lateness: float, closed: bool) -> None:
    # GIVEN a window and a clock some seconds after its end
    window = Window.containing(datetime(2026, 11, 26, 6, 50, tzinfo=UTC), seconds=FIVE_MINUTES)
    now = window.end + timedelta(seconds=seconds_after_end)
    # WHEN asked whether it is closed THEN only once the lateness has passed
    assert window.is_closed(now=now, lateness_seconds=lateness) is closed


def test_first_open_bucket_separates_closed_from_open_windows() -> None:
    # GIVEN a clock 20 s after a boundary and a lateness of 30 s
    now = datetime(2026, 11, 26, 7, 0, 20, tzinfo=UTC)
    bucket = first_open_bucket(now=now, window_seconds=FIVE_MINUTES, lateness_seconds=30)
    # WHEN the windows either side of that bucket are built
    first_open = Window.of_bucket(bucket, seconds=FIVE_MINUTES)
    last_closed = Window.of_bucket(bucket - 1, seconds=FIVE_MINUTES)
    # THEN the window that ended 20 s ago is still open, the one before it closed
    assert first_open.start == datetime(2026, 11, 26, 6, 55, tzinfo=UTC)
    assert not first_open.is_closed(now=now, lateness_seconds=30)
    assert last_closed.is_closed(now=now, lateness_seconds=30)


def test_windows_sort_by_time_and_label_is_a_compact_utc_timestamp() -> None:
    early = Window.of_bucket(10, seconds=60)
    late = Window.of_bucket(11, seconds=60)
    assert sorted([late, early]) == [early, late]
    assert early.label == "1970-01-01T00:10:00Z"


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        (datetime(2026, 1, 1), datetime(2026, 1, 1, 0, 5), "timezone-aware"),
        (datetime(2026, 1, 1, 0, 5, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC), "not after"),
    ],
)
def test_invalid_windows_are_refused(start: datetime, end: datetime, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Window(start, end)


def test_window_length_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least one second"):
        Window.of_bucket(1, seconds=0)


def test_pending_window_lists_its_versions_in_numeric_order() -> None:
    pending = PendingWindow(Window.of_bucket(1, seconds=60), {"10": 5, "9": 7, "candidate": 1})
    assert pending.versions == ("9", "10", "candidate")


def _start(bucket: int) -> datetime:
    return datetime.fromtimestamp(bucket * 60, tz=UTC)


def test_windows_never_evaluated_are_due_and_evaluated_ones_with_all_their_rows_are_not() -> None:
    # GIVEN stored rows in three one-minute windows, the middle one evaluated with all 5 of its rows
    stored = [StoredRows(3, "1", 4), StoredRows(1, "1", 5), StoredRows(2, "1", 7)]
    evaluated = {(_start(1), "1"): 5}
    # WHEN the due windows are chosen
    due = due_windows(stored, evaluated, window_seconds=60)
    # THEN the two never evaluated, oldest first, neither of them re-opened
    assert [(p.window.start, dict(p.rows_by_version), p.reopened) for p in due] == [
        (_start(2), {"1": 7}, False),
        (_start(3), {"1": 4}, False),
    ]


def test_a_window_holding_more_rows_than_its_evaluation_counted_is_reopened() -> None:
    # GIVEN a window whose version 1 was evaluated on 4,949,739 rows and now holds 5,140,838 (the file went on
    # streaming), and whose version 2 was evaluated with all of its rows
    stored = [StoredRows(7, "1", 5_140_838), StoredRows(7, "2", 30)]
    evaluated = {(_start(7), "1"): 4_949_739, (_start(7), "2"): 30}
    # WHEN the due windows are chosen
    [due] = due_windows(stored, evaluated, window_seconds=60)
    # THEN the window is due again for version 1 only, remembering what its evaluation had counted
    assert due.window.start == _start(7)
    assert dict(due.rows_by_version) == {"1": 5_140_838}
    assert dict(due.evaluated_rows_by_version) == {"1": 4_949_739}
    assert due.reopened


def test_a_window_with_fewer_rows_than_its_evaluation_counted_is_not_reopened() -> None:
    # GIVEN an evaluated window that lost rows since (retention deleted them)
    stored = [StoredRows(7, "1", 10)]
    # WHEN the due windows are chosen THEN nothing is due
    assert due_windows(stored, {(_start(7), "1"): 50}, window_seconds=60) == []


def test_a_new_version_in_a_reopened_window_is_due_as_new() -> None:
    # GIVEN a window re-opened for version 1 in which version 2 scored for the first time
    stored = [StoredRows(7, "1", 60), StoredRows(7, "2", 8)]
    [due] = due_windows(stored, {(_start(7), "1"): 50}, window_seconds=60)
    # THEN both versions are due, only version 1 as re-opened
    assert due.versions == ("1", "2")
    assert dict(due.evaluated_rows_by_version) == {"1": 50}
