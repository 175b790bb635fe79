"""The monitor's label step: new label objects ingested one by one, then ``unknown`` labels retried.

Runs before windows are evaluated, so a window whose records were labelled is evaluated (again) in the same run
(:func:`batch_monitor.window_data.windows.pending_windows` re-opens a window with labels joined after its
evaluation). Each object is its own transaction: a failure leaves the others ingested and that one for the
next run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from batch_monitor.labels.contract import LabelStatus, RowOutcome, file_outcomes, parse_label_csv
from batch_monitor.labels.formats import LabelFileError, csv_text
from batch_monitor.labels.source import label_objects, read_label_object
from batch_monitor.labels.store import FileCounts, ingest_file, processed_versions, retry_unknown


@dataclass(frozen=True, slots=True)
class LabelIngest:
    files: list[FileCounts] = field(default_factory=list)
    skipped_keys: list[str] = field(default_factory=list)
    retried_joined: int = 0


def outcomes_of(data: bytes, *, now: datetime, retention_days: float) -> list[RowOutcome]:
    """A file's rows and their outcomes within it; an unreadable file is one rejected row 0 with the reason,
    so it is recorded (and not read again) rather than failing every run."""
    try:
        text = csv_text(data)
    except LabelFileError as error:
        return [RowOutcome(0, None, None, None, LabelStatus.REJECTED, str(error))]
    return file_outcomes(parse_label_csv(text), now=now, retention_days=retention_days)


def ingest_labels(
    engine: Engine,
    s3: Any,
    *,
    bucket: str,
    prefix: str,
    now: datetime,
    received_at: datetime,
    retention_days: float,
) -> LabelIngest:
    """``now``: the monitor's moment (``too_old`` is judged against it); ``received_at``: the wall clock, which
    window evaluations are compared with."""
    objects, skipped = label_objects(s3, bucket=bucket, prefix=prefix)
    done = processed_versions(engine, sorted({item.key for item in objects}))
    files = []
    for item in objects:
        if (item.key, item.version) in done:
            continue
        outcomes = outcomes_of(read_label_object(s3, bucket=bucket, item=item), now=now, retention_days=retention_days)
        counts = ingest_file(engine, key=item.key, version=item.version, outcomes=outcomes, now=received_at)
        if counts is not None:
            files.append(counts)
    horizon = now - timedelta(days=retention_days)
    retried = retry_unknown(engine, now=received_at, expire_before=horizon)
    return LabelIngest(files=files, skipped_keys=skipped, retried_joined=retried)
