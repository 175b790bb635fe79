"""The monitor as its schedule runs it, once per window, with the planned outage: stopped for some windows,
then restarted, when it must catch up on exactly the windows it missed.

Each run is the real flow (``batch_monitor.flow.monitor_windows``) on the local stack's Prefect server.
Evaluations are counted from the monitoring table (a re-evaluated window gets a new evaluation time), so
a run that fails half-way is counted as well as one that succeeds.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from prefect.settings import PREFECT_LOGGING_TO_API_ENABLED, temporary_settings
from sqlalchemy import Engine, select

from batch_monitor import as_utc, monitor_windows
from churn_common.database import monitoring_windows
from infra.local.chaos.reconcile import EvaluationKey
from infra.local.principals import MONITOR, acting_as

log = logging.getLogger(__name__)

TICK_SECONDS = 0.25


def evaluation_times(engine: Engine) -> dict[EvaluationKey, datetime]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(
                monitoring_windows.c.window_start, monitoring_windows.c.model_version, monitoring_windows.c.evaluated_at
            )
        ).all()
    return {(as_utc(r.window_start), r.model_version): as_utc(r.evaluated_at) for r in rows}


@dataclass
class ScheduledMonitor:
    engine: Engine
    window_seconds: int
    lateness_seconds: float
    stop_at: float  # clock time of the outage's start (after the run in progress, if any)
    stopped_windows: int
    say: Callable[[str], None]
    clock: Callable[[], float] = time.time
    evaluations: Counter[EvaluationKey] = field(default_factory=Counter)
    runs: int = 0
    failed_runs: int = 0
    caught_up: int = 0
    outage_windows: int = 0
    _next_run: float = 0.0
    _stopped_until: float | None = None
    _outage_began: bool = False

    @property
    def outage_over(self) -> bool:
        """The planned outage happened and the monitor runs again."""
        return self.outage_windows > 0

    def run_until(self, stop: threading.Event) -> None:
        """The schedule: one run per window (a run that overlaps the next slot delays it, never doubles it)."""
        while not stop.is_set():
            self.tick()
            stop.wait(TICK_SECONDS)

    def tick(self) -> None:
        """Run when the schedule says so, unless stopped."""
        now = self.clock()
        if not self._outage_began and now >= self.stop_at:
            self._outage_began = True
            self._stopped_until = now + self.stopped_windows * self.window_seconds
            self.say(f"fault: monitor stopped for {self.stopped_windows} windows")
        if now < self._next_run or (self._stopped_until is not None and now < self._stopped_until):
            return
        resuming = self._stopped_until is not None
        evaluated = self.run(datetime.fromtimestamp(now, tz=UTC))
        if resuming:
            self._resumed(evaluated)
        self._next_run = now + self.window_seconds

    def final_run(self) -> None:
        """Once everything is scored: a run late enough that every window holding data is closed."""
        resuming = self._stopped_until is not None
        ahead = timedelta(seconds=self.window_seconds + self.lateness_seconds)
        evaluated = self.run(datetime.fromtimestamp(self.clock(), tz=UTC) + ahead)
        if resuming:
            self._resumed(evaluated)

    def _resumed(self, evaluated: int) -> None:
        self._stopped_until = None
        self.caught_up = evaluated
        self.outage_windows = self.stopped_windows
        self.say(f"monitor restarted: caught up on {evaluated} windows")

    def run(self, now: datetime) -> int:
        """One run of the flow; returns how many window evaluations it stored."""
        before = evaluation_times(self.engine)
        started = time.monotonic()
        try:
            # Run logs stay local: the stack's Prefect server stops with the run, before they could all be shipped.
            with temporary_settings({PREFECT_LOGGING_TO_API_ENABLED: False}), acting_as(MONITOR):
                monitor_windows(now=now, window_seconds=self.window_seconds, lateness_seconds=self.lateness_seconds)
        except Exception as exc:
            self.failed_runs += 1
            self.say(f"monitor run failed (its windows stay pending): {exc}")
        self.runs += 1
        new = [key for key, at in evaluation_times(self.engine).items() if before.get(key) != at]
        self.evaluations.update(new)
        log.info("monitor run %d at %s: %d windows in %.1f s", self.runs, now, len(new), time.monotonic() - started)
        return len(new)
