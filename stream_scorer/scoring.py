"""Pure batch logic: validated columns -> one vectorised predict -> the columns the sink stores (no I/O)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from churn_common.wire import FEATURE_SLICE
from stream_scorer.challenger import shadow_probabilities
from stream_scorer.kinesis_event import UserRecords
from stream_scorer.model import DECISION_THRESHOLD, LoadedModel
from stream_scorer.validation import DecodedColumns


@dataclass(frozen=True, slots=True)
class ScoredBatch:
    """Everything one prediction row needs, column-wise; ``columns`` are the wire fields of the records.
    The challenger's fields are ``None`` when the batch was scored by the champion alone."""

    event_ids: list[str]
    arrival_times: list[float]
    columns: tuple[tuple[Any, ...], ...]
    probabilities: list[float]
    predictions: list[int]
    model_name: str
    model_version: str
    challenger_version: str | None = None
    challenger_probabilities: list[float] | None = None

    def __len__(self) -> int:
        return len(self.event_ids)


def feature_matrix(columns: tuple[tuple[Any, ...], ...]) -> np.ndarray:
    """(records x features) float32, as the model was trained on; a transposed view, which xgboost reads
    without a copy."""
    return np.array(columns[FEATURE_SLICE], dtype=np.float32).T


def score(
    records: UserRecords, decoded: DecodedColumns, model: LoadedModel, *, challenger: LoadedModel | None = None
) -> ScoredBatch:
    """One predict call for the whole batch (two with a challenger, on the same matrix)."""
    features = feature_matrix(decoded.columns)
    probabilities = model.predict_proba(features)
    shadow = shadow_probabilities(challenger, features)
    predictions = (probabilities >= DECISION_THRESHOLD).astype(np.int8)
    indices = decoded.indices
    return ScoredBatch(
        event_ids=[records.event_ids[i] for i in indices],
        arrival_times=[records.arrival_times[i] for i in indices],
        columns=decoded.columns,
        probabilities=probabilities.tolist(),
        predictions=predictions.tolist(),
        model_name=model.name,
        model_version=model.version,
        challenger_version=challenger.version if challenger is not None and shadow is not None else None,
        challenger_probabilities=shadow,
    )
