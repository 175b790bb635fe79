"""A monitoring window: the half-open interval of event times a window's predictions fall in.

Windows are fixed-length and aligned to multiples of their length since the epoch (UTC), so a window's
identity does not depend on when the monitor runs (:mod:`batch_monitor.window_data.windows`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

ISO_SECONDS = "%Y-%m-%dT%H:%M:%SZ"


def as_utc(moment: datetime) -> datetime:
    """Naive datetimes (SQLite returns those) are UTC by the pipeline's convention."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@dataclass(frozen=True, slots=True, order=True)
class Window:
    """The half-open interval ``[start, end)`` of event times."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("window bounds must be timezone-aware")
        if self.end <= self.start:
            raise ValueError(f"window end {self.end} is not after its start {self.start}")

    @classmethod
    def containing(cls, moment: datetime, *, seconds: int) -> Window:
        return cls.of_bucket(int(as_utc(moment).timestamp() // seconds), seconds=seconds)

    @classmethod
    def of_bucket(cls, bucket: int, *, seconds: int) -> Window:
        """The ``bucket``-th window since the epoch."""
        if seconds < 1:
            raise ValueError(f"window length must be at least one second, got {seconds}")
        start = datetime.fromtimestamp(bucket * seconds, tz=UTC)
        return cls(start, start + timedelta(seconds=seconds))

    @property
    def seconds(self) -> int:
        return int((self.end - self.start).total_seconds())

    @property
    def label(self) -> str:
        """``2026-11-26T06:50:00Z``: sortable, and safe in object keys and e-mail subjects."""
        return self.start.strftime(ISO_SECONDS)

    def is_closed(self, *, now: datetime, lateness_seconds: float) -> bool:
        """Closed once late records had their grace period: ``end + lateness <= now``."""
        return self.end + timedelta(seconds=lateness_seconds) <= as_utc(now)
