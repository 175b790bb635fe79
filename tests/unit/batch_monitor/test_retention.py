"""The retention cutoff: off at 0 days, never past a window whose rows must stay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from batch_monitor.window_data.retention import retention_cutoff

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
OPEN_WINDOW = NOW - timedelta(minutes=5)


def test_zero_days_keeps_everything() -> None:
    assert retention_cutoff(now=NOW, retention_days=0, keep_from=[OPEN_WINDOW]) is None


def test_the_cutoff_is_the_retention_period_before_now() -> None:
    assert retention_cutoff(now=NOW, retention_days=30, keep_from=[OPEN_WINDOW]) == NOW - timedelta(days=30)
    assert retention_cutoff(now=NOW, retention_days=0.5, keep_from=[]) == NOW - timedelta(hours=12)


def test_a_window_to_keep_that_is_older_moves_the_cutoff_back_to_its_start() -> None:
    # GIVEN a window that failed 40 days ago and must still be evaluated
    failed = NOW - timedelta(days=40)
    # WHEN the cutoff for 30 days is computed THEN its rows stay
    assert retention_cutoff(now=NOW, retention_days=30, keep_from=[OPEN_WINDOW, failed]) == failed
    # AND a retention shorter than the lateness cannot reach into the open window
    assert retention_cutoff(now=NOW, retention_days=1 / 24 / 60, keep_from=[OPEN_WINDOW]) == OPEN_WINDOW
