"""The fault plan of a chaos run: what is streamed and which faults happen when, from a seed and a size.

Pure: the same seed and size always give the same plan. Moments are ordinals of what the injectors see
(the n-th PutRecords entry, the n-th scorer invocation, the n-th checkpoint, the n-th simulated record,
the n-th monitor run), so a seed names the same moments in every run; which records sit at them depends
on timing, as in production.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

DEFAULT_SIZE = 100_000
DEFAULT_SEED = 7
PUT_ENTRY_FAILURE_RATE = 0.20
DATABASE_FAULT_RATE = 0.02
POISON_RATE = 0.01
FILE_SHARE = 0.30
FILES = 3
EXTRA_FILES = 2  # one uploaded over a scheduled file's key, one dropped after the stack's restart
MALFORMED_ROWS_PER_FILE = 5  # data.bundled.MALFORMED_ROWS, appended to every dropped file
MONITOR_STOPPED_WINDOWS = 3
THROTTLE_ERRORS = ("ProvisionedThroughputExceededException", "InternalFailure")
# Early enough that a short run sees each fault, late enough that the pipeline is in full flow.
FIRST_DATABASE_FAULT_RANGE = (2, 6)
CRASH_CHECKPOINT_RANGE = (3, 8)
MONITOR_STOP_RANGE = (0.1, 0.3)  # fraction of the simulated stream: windows with data close while it is down
DROP_MOMENT_RANGE = (0.05, 0.6)  # fraction of the simulated stream's duration
MIN_SIZE = (FILES + EXTRA_FILES) * (MALFORMED_ROWS_PER_FILE + 100) * 4


class PoisonKind(StrEnum):
    BAD_VALUES = "bad_values"
    UNDECODABLE = "undecodable"
    UNKNOWN_VERSION = "unknown_version"


class FaultKind(StrEnum):
    PUT_RECORDS_ENTRY_FAILED = "put_records_entry_failed"
    DATABASE_CONNECTION_KILLED = "database_connection_killed"
    POISON_RECORD = "poison_record"
    LAMBDA_KILLED_BEFORE_CHECKPOINT = "lambda_killed_before_checkpoint"
    FILE_DROPPED_TWICE = "file_dropped_twice"
    MONITOR_STOPPED_WINDOWS = "monitor_stopped_windows"
    KEY_OVERWRITTEN = "key_overwritten"  # another file uploaded to a key right after the first, before processing
    FILE_OUTLIVED_INVOCATION = "file_outlived_invocation"  # producer invocations its deadline cut short
    STACK_RESTARTED = "stack_restarted"  # a new emulator (sequence numbers start again) on the same database


@dataclass(frozen=True, slots=True)
class Workload:
    """How many input rows come from where; they add up to the run's size."""

    file_rows: tuple[int, ...]  # data lines of each scheduled file, malformed ones included
    simulated_records: int
    poison_records: int
    overwrite_rows: int = 0  # the file uploaded over a scheduled file's key
    after_restart_rows: int = 0  # the file dropped after the stack's restart

    @property
    def extra_file_rows(self) -> tuple[int, ...]:
        return (self.overwrite_rows, self.after_restart_rows)

    @property
    def rows_in(self) -> int:
        return sum(self.file_rows) + sum(self.extra_file_rows) + self.simulated_records + self.poison_records

    @property
    def malformed_rows(self) -> int:
        return MALFORMED_ROWS_PER_FILE * (len(self.file_rows) + sum(1 for rows in self.extra_file_rows if rows))

    @classmethod
    def of_size(cls, size: int) -> Workload:
        if size < MIN_SIZE:
            raise ValueError(f"a chaos run needs at least {MIN_SIZE} rows, got {size}")
        poison = round(size * POISON_RATE)
        per_file = round(size * FILE_SHARE / FILES)
        extra = per_file // 2
        return cls(
            file_rows=(per_file,) * FILES,
            simulated_records=size - per_file * FILES - 2 * extra - poison,
            poison_records=poison,
            overwrite_rows=extra,
            after_restart_rows=extra,
        )


def _chance(seed: int, kind: str, ordinal: int) -> random.Random:
    """An independent draw per (seed, kind, ordinal): no ordinal's outcome depends on how many came before."""
    return random.Random(f"{seed}:{kind}:{ordinal}")


@dataclass(frozen=True, slots=True)
class FaultPlan:
    seed: int
    workload: Workload
    poison: Mapping[int, PoisonKind]  # simulated record ordinal (1-based) -> the poison put just before it
    first_database_fault: int  # scorer invocation that surely fails, so that a short run sees one
    crash_at_checkpoint: int
    monitor_stop_at: float  # moment of the monitor's outage, as a fraction of the simulated stream
    drop_at: tuple[float, ...]  # per file: moment of its drop, as a fraction of the simulated stream
    redropped_file: int
    overwritten_file: int = 0  # whose key gets the overwrite, right after its own upload
    long_file: int = 0  # streamed by producer invocations whose deadline is always near
    put_entry_failure_rate: float = PUT_ENTRY_FAILURE_RATE
    database_fault_rate: float = DATABASE_FAULT_RATE
    monitor_stopped_windows: int = MONITOR_STOPPED_WINDOWS

    @classmethod
    def build(cls, *, seed: int, size: int) -> FaultPlan:
        workload = Workload.of_size(size)
        rng = random.Random(seed)
        positions = rng.sample(range(1, workload.simulated_records + 1), workload.poison_records)
        kinds = list(PoisonKind)
        return cls(
            seed=seed,
            workload=workload,
            poison={position: kinds[i % len(kinds)] for i, position in enumerate(sorted(positions))},
            first_database_fault=rng.randint(*FIRST_DATABASE_FAULT_RANGE),
            crash_at_checkpoint=rng.randint(*CRASH_CHECKPOINT_RANGE),
            monitor_stop_at=rng.uniform(*MONITOR_STOP_RANGE),
            drop_at=tuple(sorted(rng.uniform(*DROP_MOMENT_RANGE) for _ in workload.file_rows)),
            redropped_file=rng.randrange(len(workload.file_rows)),
            # drawn last, so the moments above stay what they were for a seed
            overwritten_file=rng.randrange(len(workload.file_rows)),
            long_file=rng.randrange(len(workload.file_rows)),
        )

    def put_entry_error(self, ordinal: int) -> str | None:
        """The error code the ``ordinal``-th PutRecords entry fails with, or None when it goes through."""
        draw = _chance(self.seed, "put", ordinal)
        return draw.choice(THROTTLE_ERRORS) if draw.random() < self.put_entry_failure_rate else None

    def kills_connection(self, invocation: int) -> bool:
        """Whether the ``invocation``-th scorer invocation loses its database connection mid-transaction."""
        if invocation == self.first_database_fault:
            return True
        return _chance(self.seed, "database", invocation).random() < self.database_fault_rate
