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
    probabilities = model.predict_proba(feature_matrix(records))
    rows = []
    for fields, source, probability in zip(records, sources, probabilities.tolist(), strict=True):
        row: dict[str, Any] = dict(zip(FEATURE_COLUMNS, fields[FEATURE_SLICE], strict=True))
        row.update(
            event_id=source.event_id,
            record_id=record_id_for(fields[1], fields[2]),
            source_id=fields[1],
            row=fields[2],
            event_time=datetime.fromtimestamp(fields[3] / 1000, tz=UTC),
            arrival_time=source.arrival_time,
            scored_at=scored_at,
            model_name=model.name,
            model_version=model.version,
            churn_probability=probability,
            churn_prediction=int(probability >= DECISION_THRESHOLD),
            label=fields[LABEL_INDEX],
        )
        rows.append(row)
    return rows
