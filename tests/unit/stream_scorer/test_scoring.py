from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import xgboost

from churn_common.schema import FEATURE_COLUMNS
from churn_common.wire import encode
from stream_scorer.kinesis_event import user_records
from stream_scorer.model import DECISION_THRESHOLD, LoadedModel
from stream_scorer.scoring import feature_matrix, score
from stream_scorer.validation import decode_columns
from tests.factories import customer_record, fixed_incarnation, kinesis_event


class CountingBooster:
    """A real booster that remembers every predict call it served."""

    def __init__(self, booster: xgboost.Booster) -> None:
        self._booster = booster
        self.calls: list[tuple[int, ...]] = []

    def inplace_predict(self, features: np.ndarray) -> np.ndarray:
        self.calls.append(features.shape)
        return self._booster.inplace_predict(features)


@pytest.fixture(scope="module")
def booster() -> xgboost.Booster:
    """A small real model: churn when complaints are high, trained in a few milliseconds."""
    rng = np.random.default_rng(3)
    features = rng.integers(0, 5, size=(400, len(FEATURE_COLUMNS))).astype(np.float32)
    labels = (features[:, FEATURE_COLUMNS.index("call_failure")] >= 3).astype(int)
    return xgboost.train({"objective": "binary:logistic"}, xgboost.DMatrix(features, label=labels), 5)


@pytest.fixture
def make_event() -> Callable[..., dict]:
    def make(call_failures: list[int], *, poison_at: int | None = None) -> dict:
        payloads = [encode(customer_record(row=i + 1, call_failure=c)) for i, c in enumerate(call_failures)]
        if poison_at is not None:
            payloads.insert(poison_at, b"not a record")
        return kinesis_event(payloads)

    return make


def test_whole_batch_is_scored_with_one_predict_call(booster, make_event) -> None:
    # GIVEN 500 records (one of them poison) and a model that counts its predict calls
    event = make_event([i % 5 for i in range(500)], poison_at=250)
    records = user_records(event, incarnation_of=fixed_incarnation)
    decoded = decode_columns(records.payloads)
    counting = CountingBooster(booster)
    # WHEN the batch is scored
    scored = score(records, decoded, LoadedModel(name="M", version="7", booster=counting))  # type: ignore[arg-type]
    # THEN one call scored the 500 valid records, and every row carries its own event id and the version
    assert counting.calls == [(500, len(FEATURE_COLUMNS))]
    assert len(scored) == 500
    assert records.event_ids[250] not in scored.event_ids
    assert scored.event_ids == [records.event_ids[i] for i in decoded.indices]
    assert scored.model_version == "7"


def test_probabilities_match_the_model_and_predictions_the_threshold(booster, make_event) -> None:
    event = make_event([0, 4, 1, 3])
    records = user_records(event, incarnation_of=fixed_incarnation)
    decoded = decode_columns(records.payloads)
    scored = score(records, decoded, LoadedModel(name="M", version="1", booster=booster))
    expected = booster.inplace_predict(np.ascontiguousarray(feature_matrix(decoded.columns)))
    assert scored.probabilities == pytest.approx(expected.tolist())
    assert scored.predictions == [int(p >= DECISION_THRESHOLD) for p in scored.probabilities]
    assert scored.predictions[1] == 1
    assert scored.predictions[0] == 0


def test_feature_matrix_is_records_by_features_in_schema_order(make_event) -> None:
    decoded = decode_columns(user_records(make_event([7, 9]), incarnation_of=fixed_incarnation).payloads)
    matrix = feature_matrix(decoded.columns)
    assert matrix.shape == (2, len(FEATURE_COLUMNS))
    assert matrix.dtype == np.float32
    assert matrix[:, FEATURE_COLUMNS.index("call_failure")].tolist() == [7.0, 9.0]
