"""Page-Hinkley change detection on a stream of means (pure; its state is a small value that serialises).

Two-sided Page-Hinkley: every observation's deviation from the running mean of the stream so far, in standard
deviations and less a tolerance ``delta``, is summed upwards and downwards; a sum that climbs more than
``threshold`` above its lowest point is a shift, which began just after that lowest point. After a shift the
detector starts afresh, so the new level becomes the baseline and a lasting shift is reported once.

The scale is the largest standard deviation a mean of ``block_rows`` probabilities with the running mean m can
have, ``sqrt(m (1 - m) / block_rows)`` (a probability's variance is at most m (1 - m), reached when every one is
0 or 1). No variance has to be estimated, and for a confident classifier the bound is close: 0.37 against 0.32
to 0.34 measured per prediction on the churn data, so the false-alarm rate stays at or below the nominal one.
The first ``warmup`` observations only set the running mean.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from enum import StrEnum

# Tolerance and alarm level in standard deviations of a block mean; see batch_monitor.early_warning.
DEFAULT_DELTA = 0.5
DEFAULT_THRESHOLD = 10.0
DEFAULT_WARMUP = 10
# A running mean of exactly 0 or 1 would give no scale at all.
MIN_SCALE = 1e-3


class Direction(StrEnum):
    UP = "up"
    DOWN = "down"


@dataclass(frozen=True, slots=True)
class PageHinkleyConfig:
    block_rows: int
    delta: float = DEFAULT_DELTA
    threshold: float = DEFAULT_THRESHOLD
    warmup: int = DEFAULT_WARMUP


@dataclass(frozen=True, slots=True)
class Side:
    """One direction's cumulative sum, its lowest point, and the observations since that point."""

    total: float = 0.0
    lowest: float = 0.0
    since_count: int = 0
    since_sum: float = 0.0
    since_position: float | None = None

    def step(self, deviation: float, value: float, position: float) -> Side:
        total = self.total + deviation
        if total <= self.lowest:
            return Side(total=total, lowest=total)
        return Side(
            total=total,
            lowest=self.lowest,
            since_count=self.since_count + 1,
            since_sum=self.since_sum + value,
            since_position=position if self.since_position is None else self.since_position,
        )

    @property
    def rise(self) -> float:
        return self.total - self.lowest


@dataclass(frozen=True, slots=True)
class Shift:
    """A detected change of the stream's level: from ``before`` to ``after``, beginning at ``started_at``."""

    direction: Direction
    before: float
    after: float
    observations: int
    started_at: float
    statistic: float


@dataclass(frozen=True, slots=True)
class PageHinkley:
    count: int = 0
    mean: float = 0.0
    up: Side = field(default_factory=Side)
    down: Side = field(default_factory=Side)

    def update(self, value: float, *, position: float, config: PageHinkleyConfig) -> tuple[PageHinkley, Shift | None]:
        """The state after ``value`` (observed at ``position``, e.g. a time) and the shift it completes, if any."""
        if self.count < config.warmup:
            return replace(self, count=self.count + 1, mean=self.mean + (value - self.mean) / (self.count + 1)), None
        scale = max(math.sqrt(self.mean * (1.0 - self.mean) / config.block_rows), MIN_SCALE)
        standardised = (value - self.mean) / scale
        up = self.up.step(standardised - config.delta, value, position)
        down = self.down.step(-standardised - config.delta, value, position)
        for direction, side in ((Direction.UP, up), (Direction.DOWN, down)):
            if side.rise > config.threshold:
                return PageHinkley(), self._shift(direction, side, value)
        count = self.count + 1
        return PageHinkley(count=count, mean=self.mean + (value - self.mean) / count, up=up, down=down), None

    def _shift(self, direction: Direction, side: Side, value: float) -> Shift:
        total = self.mean * self.count + value
        count = self.count + 1
        before_count = count - side.since_count
        before = (total - side.since_sum) / before_count if before_count else self.mean
        assert side.since_position is not None
        return Shift(
            direction=direction,
            before=before,
            after=side.since_sum / side.since_count,
            observations=side.since_count,
            started_at=side.since_position,
            statistic=side.rise,
        )
