"""What the end-to-end benchmark observes on the running stack: every invocation the local Lambda service
makes (through ``LocalStack(wrap_handler=...)``), CPU time per process, and the statistics drawn from them.

The handlers stay the real ones. A wrapped scorer invocation is timed from its call to its return; the
handler returns only after its transaction has committed, so the return time is the commit time of every
prediction in the batch. ``Recorder.deliver_only`` swaps the scorer for a handler that does nothing but
count, so that the cost of the emulator and the Lambda service alone can be measured at the same rate.
"""

from __future__ import annotations

import base64
import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from infra.local.lambda_service import Handler
from stream_scorer.kinesis_event import unpack_aggregate
from stream_scorer.stream_incarnation import unqualified

SCORER = "stream_scorer"
PERCENTILES = {"p50": 50, "p95": 95, "p99": 99}
PROC = Path("/proc")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass(frozen=True, slots=True)
class Invocation:
    """One call of a handler by the Lambda service; times are epoch seconds."""

    function: str
    started: float
    finished: float
    cpu_seconds: float  # of the invoking thread, i.e. the handler's own work
    kinesis_records: int
    newest_arrival: float | None


@dataclass(slots=True)
class KinesisRecordSeen:
    """One Kinesis record (a KPL aggregate) as the scorer received it; with the scorer replaced
    (``deliver_only``) its data is kept, to count its user records once the phase is over."""

    arrival: float
    invocation: int
    data: str | None = None

    def user_records(self) -> int:
        if self.data is None:
            raise ValueError("user records are counted only for deliveries to the counting handler")
        parts = unpack_aggregate(base64.b64decode(self.data))
        return 1 if parts is None else len(parts)


@dataclass
class Recorder:
    """Wraps the stack's handlers; ``reset`` starts a new phase (``deliver_only`` or scoring)."""

    deliver_only: bool = False
    invocations: list[Invocation] = field(default_factory=list)
    records: dict[str, KinesisRecordSeen] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self, *, deliver_only: bool) -> None:
        with self._lock:
            self.deliver_only = deliver_only
            self.invocations = []
            self.records = {}

    def wrap(self, function: str, handler: Handler) -> Handler:
        def invoke(event: dict[str, Any], context: Any) -> dict[str, Any] | None:
            scorer = function == SCORER
            replaced = scorer and self.deliver_only
            started, cpu = time.time(), time.thread_time()
            response = _succeed(event) if replaced else handler(event, context)
            finished, cpu = time.time(), time.thread_time() - cpu
            if scorer:
                self._seen(event, started=started, finished=finished, cpu=cpu, keep_data=replaced)
            else:
                self._add(Invocation(function, started, finished, cpu, 0, None))
            return response

        return invoke

    def _add(self, invocation: Invocation) -> int:
        with self._lock:
            self.invocations.append(invocation)
            return len(self.invocations) - 1

    def _seen(self, event: dict[str, Any], *, started: float, finished: float, cpu: float, keep_data: bool) -> None:
        records = event["Records"]
        arrivals = [r["kinesis"]["approximateArrivalTimestamp"] for r in records]
        index = self._add(Invocation(SCORER, started, finished, cpu, len(records), max(arrivals, default=None)))
        for record, arrival in zip(records, arrivals, strict=True):
            data = record["kinesis"]["data"] if keep_data else None
            self.records[record["eventID"]] = KinesisRecordSeen(arrival=arrival, invocation=index, data=data)

    def scorer_invocations(self) -> list[Invocation]:
        return [i for i in self.invocations if i.function == SCORER]

    def of(self, function: str) -> list[Invocation]:
        return [i for i in self.invocations if i.function == function]

    def delivered_kinesis_records(self) -> int:
        return len(self.records)

    def delivered_user_records(self) -> dict[str, int]:
        """User records per delivered Kinesis record (``deliver_only`` phases)."""
        return {key: seen.user_records() for key, seen in self.records.items()}


def _succeed(_event: dict[str, Any]) -> dict[str, Any]:
    return {"batchItemFailures": []}


def kinesis_record_key(event_id: str) -> str:
    """``shardId:sequenceNumber`` of a prediction's ``event_id`` (``<incarnation>/shardId:sequenceNumber:sub``)."""
    return unqualified(event_id).rsplit(":", 1)[0]


# --- statistics ------------------------------------------------------------------------------------------


def percentiles(values: np.ndarray) -> dict[str, float]:
    if not len(values):
        return {}
    summary = {name: float(np.percentile(values, q)) for name, q in PERCENTILES.items()}
    return {**summary, "max": float(values.max()), "mean": float(values.mean())}


def rounded(summary: dict[str, float], digits: int = 3) -> dict[str, float]:
    return {k: round(v, digits) for k, v in summary.items()}


@dataclass(frozen=True, slots=True)
class PerRecord:
    """Per user record: arrival on the stream, invocation start, and commit (or delivery) time."""

    arrival: np.ndarray
    invoked: np.ndarray
    done: np.ndarray

    @classmethod
    def from_seen(cls, recorder: Recorder, counts: dict[str, int]) -> PerRecord:
        invocations = recorder.invocations
        rows = [
            (seen.arrival, invocations[seen.invocation].started, invocations[seen.invocation].finished, n)
            for key, n in counts.items()
            if (seen := recorder.records.get(key)) is not None
        ]
        if not rows:
            empty = np.array([], dtype=float)
            return cls(empty, empty, empty)
        arrival, invoked, done, n = (np.array(column) for column in zip(*rows, strict=True))
        return cls(np.repeat(arrival, n), np.repeat(invoked, n), np.repeat(done, n))

    @property
    def latency(self) -> np.ndarray:
        return self.done - self.arrival

    @property
    def waiting(self) -> np.ndarray:
        """Time in the event source mapping: polling interval plus batching window."""
        return self.invoked - self.arrival

    @property
    def handling(self) -> np.ndarray:
        return self.done - self.invoked


def iterator_age_growth(invocations: Iterable[Invocation], *, skip_seconds: float) -> dict[str, float] | None:
    """Lambda's IteratorAge (invocation start minus arrival of the batch's last record) against time: the
    least-squares slope and how much the age grew over the phase by that slope. A consumer that keeps up
    has no trend; one that falls behind grows by (1 - capacity / rate) seconds per second.

    Only invocations that start while records still arrive count: the last batches after the load stops
    wait out the batching window with nothing newer behind them, which is no sign of falling behind."""
    points = [(i.started, i.started - i.newest_arrival) for i in invocations if i.newest_arrival is not None]
    if not points:
        return None
    start = min(t for t, _ in points)
    load_end = max(i.newest_arrival for i in invocations if i.newest_arrival is not None)
    kept = [(t, age) for t, age in points if skip_seconds <= t - start and t <= load_end] or points
    times, ages = (np.array(column) for column in zip(*kept, strict=True))
    slope = float(np.polyfit(times - times[0], ages, 1)[0]) if len(kept) > 2 else 0.0
    span = float(times[-1] - times[0])
    return {
        "slope_s_per_s": round(slope, 4),
        "growth_s": round(slope * span, 3),
        "max_s": round(float(ages.max()), 3),
        "last_s": round(float(ages[-1]), 3),
    }


def invocation_cost(invocations: list[Invocation], counts: list[int]) -> dict[str, float] | None:
    """Per scorer invocation: user records, handler wall time and the invoking thread's CPU time (database
    work and xgboost's own threads run elsewhere, so CPU here is a lower bound)."""
    if not invocations:
        return None
    seconds = np.array([i.finished - i.started for i in invocations])
    cpu = np.array([i.cpu_seconds for i in invocations])
    n = np.array(counts, dtype=float)
    return {
        "invocations": len(invocations),
        "median_records": int(np.median(n)),
        "median_ms": round(float(np.median(seconds)) * 1000, 1),
        "p95_ms": round(float(np.percentile(seconds, 95)) * 1000, 1),
        "max_ms": round(float(seconds.max()) * 1000, 1),
        "median_us_per_record": round(float(np.median(seconds / np.maximum(n, 1))) * 1e6, 1),
        "median_thread_cpu_ms": round(float(np.median(cpu)) * 1000, 1),
    }


# --- where the scorer's wall time goes ---------------------------------------------------------------

# First match on the innermost frame's file decides; frames of C code (orjson, numpy kernels, the GIL
# wait itself) show as the Python frame that called them.
FRAME_CATEGORIES: tuple[tuple[str, str], ...] = (
    ("/psycopg/", "database"),
    ("/sqlalchemy/", "database"),
    ("/xgboost/", "predict"),
    ("/pydantic", "validation"),
    ("/stream_scorer/", "scorer code"),
    ("/numpy/", "scorer code"),
    ("/logging/", "logging"),
)
HANDLER_FILE = "stream_scorer/handler.py"
TOP_FRAMES = 8


def frame_category(filename: str) -> str:
    return next((category for marker, category in FRAME_CATEGORIES if marker in filename), "other")


@dataclass
class HandlerSampler:
    """Samples the stacks of the scorer's poller threads every ``interval`` seconds and counts, for the
    samples taken inside the handler, the category of the innermost frame. Combined with the handler's
    thread CPU time this separates waiting on the database from running (or waiting for the GIL) in Python."""

    thread_prefix: str = f"esm-{SCORER}-"
    interval: float = 0.005
    counts: Counter[str] = field(default_factory=Counter)
    locations: Counter[str] = field(default_factory=Counter)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self.counts, self.locations = Counter(), Counter()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="e2e-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> dict[str, Any]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        total = sum(self.counts.values())
        if not total:
            return {}
        return {
            "samples": total,
            "share": {k: round(n / total, 3) for k, n in self.counts.most_common()},
            "top_frames": {k: round(n / total, 3) for k, n in self.locations.most_common(TOP_FRAMES)},
        }

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            ids = {t.ident for t in threading.enumerate() if t.name.startswith(self.thread_prefix)}
            for ident, frame in sys._current_frames().items():
                if ident in ids:
                    self._sample(frame)

    def _sample(self, frame: Any) -> None:
        code = frame.f_code
        while frame is not None:
            if frame.f_code.co_filename.endswith(HANDLER_FILE):
                self.counts[frame_category(code.co_filename)] += 1
                self.locations[
                    f"{Path(code.co_filename).parent.name}/{Path(code.co_filename).name}:{code.co_name}"
                ] += 1
                return
            frame = frame.f_back


# --- CPU time per process ------------------------------------------------------------------------------


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU of a process from /proc (Linux); None when it cannot be read."""
    try:
        fields = (PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def own_cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


@dataclass
class CpuMeter:
    """CPU seconds of this process and of the database server's backends serving ``pids`` over a phase."""

    backend_pids: Any  # () -> Iterable[int]
    _own: float = 0.0
    _backends: dict[int, float] = field(default_factory=dict)
    _wall: float = 0.0

    def start(self) -> None:
        self._own, self._wall = own_cpu_seconds(), time.monotonic()
        self._backends = {pid: cpu for pid in self.backend_pids() if (cpu := process_cpu_seconds(pid)) is not None}

    def stop(self) -> dict[str, float | None]:
        wall = time.monotonic() - self._wall
        own = own_cpu_seconds() - self._own
        backends = 0.0
        readable = False
        for pid in self.backend_pids():
            cpu = process_cpu_seconds(pid)
            if cpu is not None:
                readable = True
                backends += cpu - self._backends.get(pid, 0.0)
        return {
            "wall_s": round(wall, 2),
            "stack_process_cpu_per_s": round(own / wall, 3),
            "database_cpu_per_s": round(backends / wall, 3) if readable else None,
        }
