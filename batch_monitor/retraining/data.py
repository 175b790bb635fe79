"""What retraining reads from the pipeline's tables: window quality, and the recent labelled records."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
from sqlalchemy import Engine, select

from batch_monitor.core import EvaluationStatus, Window, as_utc
from batch_monitor.core.evaluation import QUALITY_FIELDS
from batch_monitor.retraining.decision import WindowQuality
from batch_monitor.retraining.live_promotion import LiveWindow
from churn_common.database import monitoring_windows, predictions
from churn_common.schema import FEATURE_COLUMNS, LABEL_COLUMN


def quality_history(engine: Engine, *, model_version: str, since: datetime | None = None) -> list[WindowQuality]:
    """Evaluated windows of one model version with their quality figures, oldest first."""
    query = (
        select(
            monitoring_windows.c.window_start,
            monitoring_windows.c.window_end,
            *(monitoring_windows.c[name] for name in QUALITY_FIELDS),
        )
        .where(
            monitoring_windows.c.model_version == model_version,
            monitoring_windows.c.status == str(EvaluationStatus.EVALUATED),
        )
        .order_by(monitoring_windows.c.window_start)
    )
    if since is not None:
        query = query.where(monitoring_windows.c.window_start >= since)
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    return [
        WindowQuality(
            Window(as_utc(row.window_start), as_utc(row.window_end)),
            model_version,
            {name: float(value) for name in QUALITY_FIELDS if (value := getattr(row, name)) is not None},
        )
        for row in rows
    ]


def live_windows(engine: Engine, *, serving_version: str, challenger_version: str) -> list[LiveWindow]:
    """Evaluated windows the serving version scored with this challenger beside it, oldest first, with the
    latest stored figures (a window re-evaluated after its labels joined holds the new ones)."""
    query = (
        select(
            monitoring_windows.c.window_start,
            monitoring_windows.c.window_end,
            monitoring_windows.c.f1,
            monitoring_windows.c.challenger_f1,
        )
        .where(
            monitoring_windows.c.model_version == serving_version,
            monitoring_windows.c.challenger_version == challenger_version,
            monitoring_windows.c.status == str(EvaluationStatus.EVALUATED),
        )
        .order_by(monitoring_windows.c.window_start)
    )
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    return [
        LiveWindow(
            window=Window(as_utc(row.window_start), as_utc(row.window_end)),
            model_version=serving_version,
            challenger_version=challenger_version,
            f1=None if row.f1 is None else float(row.f1),
            challenger_f1=None if row.challenger_f1 is None else float(row.challenger_f1),
        )
        for row in rows
    ]


def labelled_records(engine: Engine, *, model_name: str, start: datetime, end: datetime) -> pd.DataFrame:
    """Features and label of every labelled record with an event time in ``[start, end)``, each record once
    (a re-sent file or a window scored by two versions repeats it), in the layout training reads."""
    query = (
        select(predictions.c.record_id, *(predictions.c[name] for name in FEATURE_COLUMNS), predictions.c.label)
        .where(
            predictions.c.model_name == model_name,
            predictions.c.event_time >= start,
            predictions.c.event_time < end,
            predictions.c.label.is_not(None),
        )
        .order_by(predictions.c.event_time, predictions.c.record_id)
    )
    with engine.connect() as connection:
        frame = pd.DataFrame(connection.execute(query).all(), columns=["record_id", *FEATURE_COLUMNS, "label"])
    frame = frame.drop_duplicates("record_id").drop(columns="record_id")
    return frame.rename(columns={"label": LABEL_COLUMN}).astype({LABEL_COLUMN: "int64"}).reset_index(drop=True)
