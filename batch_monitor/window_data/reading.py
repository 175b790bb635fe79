"""The rows a window is judged on: its predictions of one model version, read from the predictions table.

A window of up to ``sample_rows`` stored rows is read whole. A larger one is read as a uniform sample of
its records (see :mod:`batch_monitor.window_data.sample_keys`), while the database counts every record for the row
count and the confusion counts, so those stay exact; reading a million rows into Python alone would take
longer than the whole evaluation may. The count runs on a second connection while the sample is read.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import ColumnElement, Connection, Engine, Select, func, select

from batch_monitor.core.quality import WindowCounts, counts_of
from batch_monitor.core.window import Window
from batch_monitor.window_data.sample_keys import key_threshold, sample_key
from churn_common.database import predictions
from churn_common.registry import PREDICTION_COLUMN, PROBABILITY_COLUMN, TARGET_COLUMN
from churn_common.schema import FEATURE_COLUMNS

# The shadow-scored challenger's columns come along for its estimated quality (NULL without a challenger).
CHALLENGER_COLUMNS: tuple[str, ...] = ("challenger_version", "challenger_probability")
WINDOW_COLUMNS: tuple[str, ...] = (
    "record_id",
    *FEATURE_COLUMNS,
    PROBABILITY_COLUMN,
    PREDICTION_COLUMN,
    TARGET_COLUMN,
    *CHALLENGER_COLUMNS,
)
# Sampling error of a drift score: about 0.003 reference standard deviations at 100,000 records (drift notes).
SAMPLE_ROWS = 100_000


@dataclass(frozen=True, slots=True)
class WindowRows:
    """Every record of a window, or a uniform sample of them, with the exact counts of all of them."""

    rows: pd.DataFrame
    counts: WindowCounts

    @property
    def sampled(self) -> bool:
        return len(self.rows) < self.counts.rows


def _in_window(*, window: Window, model_name: str, model_version: str) -> tuple[ColumnElement[bool], ...]:
    return (
        predictions.c.model_name == model_name,
        predictions.c.model_version == model_version,
        predictions.c.event_time >= window.start,
        predictions.c.event_time < window.end,
    )


def _frame(connection: Connection, query: Select[Any]) -> pd.DataFrame:
    """The result as the driver's plain tuples: a row object per record would cost more than the read itself."""
    result = connection.execute(query)
    try:
        return pd.DataFrame.from_records(result.cursor.fetchall(), columns=list(result.keys()))
    finally:
        result.close()


def load_window(engine: Engine, *, window: Window, model_name: str, model_version: str) -> pd.DataFrame:
    """The window's predictions of one model version, each source record once (a re-sent file repeats them)."""
    query = (
        select(*(predictions.c[name] for name in WINDOW_COLUMNS))
        .where(*_in_window(window=window, model_name=model_name, model_version=model_version))
        .order_by(predictions.c.scored_at, predictions.c.event_id)
    )
    with engine.connect() as connection:
        frame = _frame(connection, query)
    return frame.drop_duplicates("record_id", keep="first").drop(columns="record_id").reset_index(drop=True)


def count_stored_rows(engine: Engine, *, window: Window, model_name: str, model_version: str) -> int:
    """Stored rows, copies of re-sent records included: cheap, and enough to size a sample."""
    query = select(func.count()).where(*_in_window(window=window, model_name=model_name, model_version=model_version))
    with engine.connect() as connection:
        return int(connection.execute(query).scalar_one())


def count_window(engine: Engine, *, window: Window, model_name: str, model_version: str) -> WindowCounts:
    """Records and confusion counts of the whole window, summed by the database.

    Copies of a record come from the same source object scored by the same model version, so they share
    their label and prediction: counting distinct record ids per (label, prediction) counts each record once.
    """
    records = func.count(predictions.c.record_id.distinct())
    query = (
        select(predictions.c.label, predictions.c.churn_prediction, records)
        .where(*_in_window(window=window, model_name=model_name, model_version=model_version))
        .group_by(predictions.c.label, predictions.c.churn_prediction)
    )
    with engine.connect() as connection:
        groups = connection.execute(query).all()
    return WindowCounts.from_groups((label, prediction, n) for label, prediction, n in groups)


def sample_window(
    engine: Engine, *, window: Window, model_name: str, model_version: str, fraction: float
) -> pd.DataFrame:
    """About ``fraction`` of the window's records, each once, in an order that depends only on the records."""
    key = sample_key(engine.dialect.name)
    query = select(*(predictions.c[name] for name in WINDOW_COLUMNS)).where(
        *_in_window(window=window, model_name=model_name, model_version=model_version),
        key.expression(predictions.c.record_id) < key_threshold(fraction),
    )
    with engine.connect() as connection:
        key.prepare(connection)
        frame = _frame(connection, query)
    frame = frame.drop_duplicates("record_id")
    order = np.argsort(pd.util.hash_array(frame["record_id"].to_numpy()), kind="stable")
    return frame.iloc[order].drop(columns="record_id").reset_index(drop=True)


def read_window(
    engine: Engine, *, window: Window, model_name: str, model_version: str, sample_rows: int = SAMPLE_ROWS
) -> WindowRows:
    """The whole window when it holds at most ``sample_rows`` rows, else a sample of about that many records."""
    where = {"window": window, "model_name": model_name, "model_version": model_version}
    stored = count_stored_rows(engine, **where)
    if stored <= sample_rows:
        rows = load_window(engine, **where)
        return WindowRows(rows, counts_of(rows))
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="window-counts") as pool:
        counts = pool.submit(count_window, engine, **where)
        rows = sample_window(engine, **where, fraction=sample_rows / stored)
        return WindowRows(rows, counts.result())
