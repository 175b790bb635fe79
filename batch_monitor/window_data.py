"""The rows a window is judged on: its predictions of one model version, read from the predictions table."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import Engine, select

from batch_monitor.windows import Window
from churn_common.database import predictions
from churn_common.registry import PREDICTION_COLUMN, PROBABILITY_COLUMN, TARGET_COLUMN
from churn_common.schema import FEATURE_COLUMNS

WINDOW_COLUMNS: tuple[str, ...] = ("record_id", *FEATURE_COLUMNS, PROBABILITY_COLUMN, PREDICTION_COLUMN, TARGET_COLUMN)


def load_window(engine: Engine, *, window: Window, model_name: str, model_version: str) -> pd.DataFrame:
    """The window's predictions of one model version, each source record once (a re-sent file repeats them)."""
    query = (
        select(*(predictions.c[name] for name in WINDOW_COLUMNS))
        .where(
            predictions.c.model_name == model_name,
            predictions.c.model_version == model_version,
            predictions.c.event_time >= window.start,
            predictions.c.event_time < window.end,
        )
        .order_by(predictions.c.scored_at, predictions.c.event_id)
    )
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    frame = pd.DataFrame(rows, columns=list(WINDOW_COLUMNS))
    return frame.drop_duplicates("record_id", keep="first").drop(columns="record_id").reset_index(drop=True)
