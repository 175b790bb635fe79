"""Pure batch logic: validated wire tuples -> prediction rows (no I/O)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np

from churn_common.schema import FEATURE_COLUMNS
from churn_common.wire import FEATURE_SLICE, LABEL_INDEX, record_id_for
from stream_scorer.kinesis_event import UserRecord
from stream_scorer.model import DECISION_THRESHOLD, LoadedModel


def feature_matrix(records: Sequence[tuple[Any, ...]]) -> np.ndarray:
    return np.array([r[FEATURE_SLICE] for r in records], dtype=np.float32).reshape(len(records), len(FEATURE_COLUMNS))


_ROW_KEYS = (
    *FEATURE_COLUMNS,
    "label",
    "event_id",
    "record_id",
    "source_id",
    "row",
    "event_time",
    "arrival_time",
    "scored_at",
    "model_name",
    "model_version",
    "churn_probability",
    "churn_prediction",
)


def prediction_rows(
    records: Sequence[tuple[Any, ...]],
    sources: Sequence[UserRecord],
    model: LoadedModel,
    *,
    scored_at: datetime,
) -> list[dict[str, Any]]:
    """One vectorised predict for the whole batch, then one row dict per record."""
    if not records:
        return []
    probabilities = model.predict_proba(feature_matrix(records)).tolist()
    name, version = model.name, model.version
    return [
        dict(
            zip(
                _ROW_KEYS,
                (
                    *fields[FEATURE_SLICE],
                    fields[LABEL_INDEX],
                    source.event_id,
                    record_id_for(fields[1], fields[2]),
                    fields[1],
                    fields[2],
                    datetime.fromtimestamp(fields[3] / 1000, tz=UTC),
                    source.arrival_time,
                    scored_at,
                    name,
                    version,
                    probability,
                    int(probability >= DECISION_THRESHOLD),
                ),
                strict=True,
            )
        )
        for fields, source, probability in zip(records, sources, probabilities, strict=True)
    ]
