"""What the label store tests do to the store: ingest one file's text as the flow would, read the labels back."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import Engine, select

from batch_monitor.labels.contract import file_outcomes, parse_label_csv
from batch_monitor.labels.store import FileCounts, ingest_file
from churn_common.database import predictions

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
RETENTION_DAYS = 30


def ingesting(engine: Engine) -> Callable[..., FileCounts | None]:
    """A file's text ingested at ``NOW`` under ``key`` and ``version``, with a 30-day retention."""

    def run(text: str, *, key: str = "data/labels/a.csv", version: str = "v1") -> FileCounts | None:
        outcomes = file_outcomes(parse_label_csv(text), now=NOW, retention_days=RETENTION_DAYS)
        return ingest_file(engine, key=key, version=version, outcomes=outcomes, now=NOW)

    return run


def stored_labels(engine: Engine) -> dict[str, int | None]:
    with engine.connect() as connection:
        rows = connection.execute(select(predictions.c.record_id, predictions.c.label)).all()
    return {row.record_id: row.label for row in rows}
