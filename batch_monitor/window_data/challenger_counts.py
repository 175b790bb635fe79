"""The challenger's decisions in a window, counted by the database (see :mod:`batch_monitor.core.challenger`)."""

from __future__ import annotations

from sqlalchemy import Engine, case, func, literal_column, select

from batch_monitor.core.challenger import ChallengerGroup
from batch_monitor.core.window import Window
from batch_monitor.window_data.reading import _in_window
from churn_common.database import predictions
from churn_common.schema import DECISION_THRESHOLD

# The decision the challenger would have stored had it been serving. Literals, not bound parameters: Postgres
# only matches the grouped expression with the selected one when their text is the same.
_CHALLENGER_PREDICTION = case(
    (predictions.c.challenger_probability >= literal_column(repr(DECISION_THRESHOLD)), literal_column("1")),
    else_=literal_column("0"),
)


def challenger_groups(engine: Engine, *, window: Window, model_name: str, model_version: str) -> list[ChallengerGroup]:
    """Shadow-scored records of the window (each once) by challenger version, label and both decisions."""
    keys = (
        predictions.c.challenger_version,
        predictions.c.label,
        predictions.c.churn_prediction,
        _CHALLENGER_PREDICTION,
    )
    query = (
        select(*keys, func.count(predictions.c.record_id.distinct()))
        .where(
            *_in_window(window=window, model_name=model_name, model_version=model_version),
            predictions.c.challenger_probability.is_not(None),
        )
        .group_by(*keys)
    )
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    return [
        ChallengerGroup(
            challenger_version=str(version),
            label=None if label is None else int(label),
            prediction=int(prediction),
            challenger_prediction=int(challenger_prediction),
            records=int(records),
        )
        for version, label, prediction, challenger_prediction, records in rows
    ]
