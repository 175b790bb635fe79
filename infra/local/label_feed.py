"""The stream simulator's label feed: the true labels of a share of the streamed records, held back and
dropped later as label files under the labels prefix, as churn labels reach the pipeline long after the
record was scored.

:class:`LabelHoldback` decides which records' labels are held back (a seeded draw, so a run's choice can be
repeated) and when each is due; it never reads a clock. :func:`label_file_body` and :func:`label_file_key`
shape a file as the monitor's label contract reads it (``batch_monitor/labels/contract.py``);
:class:`S3LabelDrop` only writes one; :class:`LabelFeed` decides when a file is written.

Design notes: docs/producer.md#label-feed
"""

from __future__ import annotations

import csv
import io
import itertools
import random
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ConfigDict, Field

from churn_common.redaction import redact

DEFAULT_LABEL_SHARE = 0.0
DEFAULT_LABEL_DELAY_SECONDS = 10.0
DEFAULT_LABEL_FILE_SECONDS = 5.0
LABEL_FILE_COLUMNS: tuple[str, ...] = ("record_id", "churned", "observed_at")
LABEL_FILE_STEM = "stream-labels"
LABEL_FILE_CONTENT_TYPE = "text/csv"
MAX_CONSECUTIVE_WRITE_FAILURES = 3


class LabelFeedOptions(BaseModel):
    """The feed's command-line options, checked once at the boundary."""

    model_config = ConfigDict(frozen=True)

    share: float = Field(DEFAULT_LABEL_SHARE, ge=0.0, le=1.0)
    delay_seconds: float = Field(DEFAULT_LABEL_DELAY_SECONDS, ge=0.0)
    file_seconds: float = Field(DEFAULT_LABEL_FILE_SECONDS, gt=0.0)
    seed: int

    @property
    def enabled(self) -> bool:
        return self.share > 0


@dataclass(frozen=True, slots=True)
class HeldLabel:
    """A record's true label and the moment it becomes known (its send time plus the delay), which is also
    the ``observed_at`` its file states."""

    record_id: str
    churned: int
    due_at: datetime


class LabelHoldback:
    """Held-back labels in the order their records were sent.

    Only a prefix of the queue is ever due, so a wall clock stepping back delays later labels but never lets
    one out before its delay; a label leaves the queue only when :meth:`confirm` says its file was written,
    so a failed write loses nothing."""

    def __init__(self, *, share: float, delay_seconds: float, seed: int) -> None:
        self._share = share
        self._delay = timedelta(seconds=delay_seconds)
        self._rng = random.Random(seed)
        self._pending: deque[HeldLabel] = deque()
        self.held = 0
        self.delivered = 0
        self.unlabelled = 0

    @property
    def pending(self) -> int:
        return len(self._pending)

    def offer(self, *, record_id: str, churned: int | None, sent_at: datetime) -> bool:
        """Whether this record's label is held back; a record with no true label (a CSV without the churn
        column) has none to hold and takes no draw."""
        if churned is None:
            self.unlabelled += 1
            return False
        if self._rng.random() >= self._share:
            return False
        self._pending.append(HeldLabel(record_id=record_id, churned=churned, due_at=sent_at + self._delay))
        self.held += 1
        return True

    def due(self, *, now: datetime) -> list[HeldLabel]:
        """The labels due at ``now``, oldest first; they stay held until confirmed."""
        return list(itertools.takewhile(lambda label: label.due_at <= now, self._pending))

    def confirm(self, *, count: int) -> None:
        """The first ``count`` labels were written."""
        if count > len(self._pending):
            raise ValueError(f"{count} labels confirmed, {len(self._pending)} held")
        for _ in range(count):
            self._pending.popleft()
        self.delivered += count

    def next_due_at(self) -> datetime | None:
        return self._pending[0].due_at if self._pending else None

    def last_due_at(self) -> datetime | None:
        return max(label.due_at for label in self._pending) if self._pending else None


def label_file_body(labels: Sequence[HeldLabel]) -> bytes:
    """A label file: the contract's header, then one row per label, ``observed_at`` with its UTC offset."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(LABEL_FILE_COLUMNS)
    for label in labels:
        if label.due_at.utcoffset() is None:
            raise ValueError(f"the time of {label.record_id}'s label has no UTC offset")
        writer.writerow([label.record_id, label.churned, label.due_at.isoformat()])
    return out.getvalue().encode()


def label_file_key(*, prefix: str, source_id: str, started: datetime, number: int) -> str:
    """``<prefix>stream-labels-<source id>-<run start, UTC>-<n>.csv``: unique per run and file, so a file is
    never overwritten (which the monitor would ingest again as a new version)."""
    stamp = started.astimezone(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    return f"{prefix}{LABEL_FILE_STEM}-{source_id}-{stamp}-{number:05d}.csv"


class LabelDropError(Exception):
    """A label file could not be written; its labels stay held."""


class LabelDrop(Protocol):
    def put(self, *, key: str, body: bytes) -> None: ...


@dataclass(frozen=True, slots=True)
class S3LabelDrop:
    s3: Any
    bucket: str

    def put(self, *, key: str, body: bytes) -> None:
        try:
            self.s3.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType=LABEL_FILE_CONTENT_TYPE)
        except (BotoCoreError, ClientError) as exc:
            raise LabelDropError(f"s3://{self.bucket}/{key}: {redact(str(exc))}") from exc


@dataclass(frozen=True, slots=True)
class LabelFeedSummary:
    held: int
    delivered: int
    not_delivered: int
    files: int
    unlabelled: int
    last_error: str | None


class LabelFeed:
    """Held-back labels written as files, at most one per ``file_seconds``, each with every label due by then:
    few objects for the monitor to list, and no label waits much longer than its delay."""

    def __init__(
        self,
        *,
        holdback: LabelHoldback,
        drop: LabelDrop,
        prefix: str,
        source_id: str,
        started: datetime,
        file_seconds: float,
    ) -> None:
        self._holdback = holdback
        self._drop = drop
        self._prefix = prefix
        self._source_id = source_id
        self._started = started
        self._every = timedelta(seconds=file_seconds)
        self._last_write = started
        self._files = 0
        self._failures_in_a_row = 0
        self._last_error: str | None = None
        self.keys: list[str] = []

    @property
    def pending(self) -> int:
        return self._holdback.pending

    def offer(self, *, record_id: str, churned: int | None, sent_at: datetime) -> bool:
        return self._holdback.offer(record_id=record_id, churned=churned, sent_at=sent_at)

    def tick(self, *, now: datetime) -> None:
        """Write the due labels when a file interval has passed since the last attempt."""
        if now - self._last_write >= self._every:
            self.write_due(now=now)

    def write_due(self, *, now: datetime) -> int:
        """One file with every label due at ``now`` (none when nothing is due); returns how many it holds."""
        self._last_write = now
        due = self._holdback.due(now=now)
        if not due:
            return 0
        key = label_file_key(
            prefix=self._prefix, source_id=self._source_id, started=self._started, number=self._files + 1
        )
        try:
            self._drop.put(key=key, body=label_file_body(due))
        except LabelDropError as exc:
            self._failures_in_a_row += 1
            self._last_error = str(exc)
            return 0
        self._failures_in_a_row = 0
        self._holdback.confirm(count=len(due))
        self._files += 1
        self.keys.append(key)
        return len(due)

    def drain(self, *, now: Callable[[], datetime], sleep: Callable[[float], None]) -> None:
        """Wait out the delay of every label still held, writing files in the usual rhythm and the last one as
        soon as its labels are due; gives up after ``MAX_CONSECUTIVE_WRITE_FAILURES`` failed writes in a row
        (the labels left are then not delivered)."""
        while self._failures_in_a_row < MAX_CONSECUTIVE_WRITE_FAILURES:
            first, last = self._holdback.next_due_at(), self._holdback.last_due_at()
            if first is None or last is None:
                return
            next_file = self._last_write + self._every
            wake = next_file if self._failures_in_a_row else max(first, min(next_file, last))
            current = now()
            if wake > current:
                sleep((wake - current).total_seconds())
                continue
            self.write_due(now=current)

    def summary(self) -> LabelFeedSummary:
        return LabelFeedSummary(
            held=self._holdback.held,
            delivered=self._holdback.delivered,
            not_delivered=self._holdback.pending,
            files=self._files,
            unlabelled=self._holdback.unlabelled,
            last_error=self._last_error,
        )
