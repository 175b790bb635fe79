"""Scoring a batch with a challenger beside the champion: same rows, its own probabilities, never a failure."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import xgboost

from churn_common.schema import FEATURE_COLUMNS
from churn_common.wire import encode
from stream_scorer.kinesis_event import user_records
from stream_scorer.model import LoadedModel
from stream_scorer.scoring import ScoredBatch, score
from stream_scorer.validation import decode_columns
from tests.factories import customer_record, fixed_incarnation, kinesis_event


class RecordingBooster:
    """A real booster that keeps a copy of every matrix it was asked to predict."""

    def __init__(self, booster: xgboost.Booster) -> None:
        self._booster = booster
        self.matrices: list[np.ndarray] = []

    def inplace_predict(self, features: np.ndarray) -> np.ndarray:
        self.matrices.append(np.array(features))
        return self._booster.inplace_predict(features)


class FailingBooster:
    def inplace_predict(self, features: np.ndarray) -> np.ndarray:
        raise xgboost.core.XGBoostError("Feature shape mismatch")


def trained(column: str, *, threshold: int) -> xgboost.Booster:
    """A small real model that learnt churn from one column: two of these disagree on some records."""
    rng = np.random.default_rng(11)
    features = rng.integers(0, 10, size=(400, len(FEATURE_COLUMNS))).astype(np.float32)
    labels = (features[:, FEATURE_COLUMNS.index(column)] >= threshold).astype(int)
    return xgboost.train({"objective": "binary:logistic"}, xgboost.DMatrix(features, label=labels), 5)


@pytest.fixture
def scored_with() -> Callable[..., ScoredBatch]:
    def scored(champion: object, challenger: object | None) -> ScoredBatch:
        payloads = [encode(customer_record(row=i + 1, call_failure=i % 10, complains=i % 2)) for i in range(40)]
        records = user_records(kinesis_event(payloads), incarnation_of=fixed_incarnation)
        return score(
            records,
            decode_columns(records.payloads),
            LoadedModel(name="M", version="1", booster=champion),  # type: ignore[arg-type]
            challenger=None if challenger is None else LoadedModel(name="M", version="2", booster=challenger),  # type: ignore[arg-type]
        )

    return scored


def test_challenger_scores_the_champions_rows_with_its_own_model(scored_with) -> None:
    # GIVEN two models that learnt churn from different columns
    champion = RecordingBooster(trained("call_failure", threshold=5))
    challenger_model = trained("complains", threshold=1)
    challenger = RecordingBooster(challenger_model)
    # WHEN a batch is scored with both
    batch = scored_with(champion, challenger)
    # THEN each model predicted once, on the same matrix, and each column holds that model's own probabilities
    assert len(champion.matrices) == len(challenger.matrices) == 1
    np.testing.assert_array_equal(champion.matrices[0], challenger.matrices[0])
    own = challenger_model.predict(xgboost.DMatrix(challenger.matrices[0])).tolist()
    assert batch.challenger_probabilities == pytest.approx(own)
    assert batch.challenger_version == "2"
    assert batch.challenger_probabilities != pytest.approx(batch.probabilities)


def test_without_a_challenger_the_batch_carries_none(scored_with) -> None:
    batch = scored_with(trained("call_failure", threshold=5), None)
    assert (batch.challenger_version, batch.challenger_probabilities) == (None, None)


def test_failing_challenger_leaves_the_champions_scores_alone(scored_with) -> None:
    # GIVEN a challenger whose predict raises
    champion = trained("call_failure", threshold=5)
    alone = scored_with(champion, None)
    # WHEN the batch is scored with it THEN it is scored as by the champion alone, without challenger fields
    batch = scored_with(champion, FailingBooster())
    assert (batch.challenger_version, batch.challenger_probabilities) == (None, None)
    assert batch.probabilities == alone.probabilities
    assert batch.predictions == alone.predictions
