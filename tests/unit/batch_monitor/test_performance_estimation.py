"""Confidence-based performance estimation: with the labels hidden, the estimate lands close to the quality
the labels would have shown, on synthetic customers whose churn depends on their features."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score
from sklearn.model_selection import train_test_split
from xgboost import XGBClassifier

from batch_monitor.core.quality import counts_of
from batch_monitor.evaluation.performance_estimation import (
    ESTIMATED_METRICS,
    Calibration,
    calibrate_on_reference,
    calibration_rows,
    estimate_quality,
    estimate_window_quality,
    fit_calibration,
)
from churn_common.registry import PREDICTION_COLUMN, PROBABILITY_COLUMN, TARGET_COLUMN
from churn_common.schema import FEATURE_COLUMNS, LABEL_COLUMN
from data.synthetic import generate, strong_drift

# Largest gap between estimate and realised value allowed per metric on 1,000-row windows: about the 90th
# percentile measured over 30 strongly drifted windows of 6 models; the gaps here are a third of that or less.
TOLERANCE = {"f1": 0.06, "precision": 0.08, "recall": 0.10, "accuracy": 0.02, "roc_auc": 0.015}


@pytest.fixture(scope="module")
def model_and_reference() -> tuple[XGBClassifier, pd.DataFrame]:
    """A model trained on parametric synthetic customers, and its reference: every row scored, split marked."""
    frame = generate(n_rows=3000, seed=101)
    train, holdout = train_test_split(frame, test_size=0.25, random_state=0, stratify=frame[LABEL_COLUMN])
    model = XGBClassifier(n_estimators=120, max_depth=4, learning_rate=0.1, n_jobs=2, random_state=0)
    model.fit(train[list(FEATURE_COLUMNS)], train[LABEL_COLUMN])
    reference = frame.rename(columns={LABEL_COLUMN: TARGET_COLUMN})
    reference[PROBABILITY_COLUMN] = model.predict_proba(frame[list(FEATURE_COLUMNS)])[:, 1]
    reference[PREDICTION_COLUMN] = (reference[PROBABILITY_COLUMN] >= 0.5).astype(int)
    reference["split"] = np.where(frame.index.isin(holdout.index), "holdout", "train")
    return model, reference


@pytest.fixture
def scored(model_and_reference) -> Callable[[pd.DataFrame], pd.DataFrame]:  # type: ignore[no-untyped-def]
    model, _ = model_and_reference

    def score(frame: pd.DataFrame) -> pd.DataFrame:
        out = frame.rename(columns={LABEL_COLUMN: TARGET_COLUMN})
        out[PROBABILITY_COLUMN] = model.predict_proba(frame[list(FEATURE_COLUMNS)])[:, 1]
        out[PREDICTION_COLUMN] = (out[PROBABILITY_COLUMN] >= 0.5).astype(int)
        return out

    return score


def realised(window: pd.DataFrame) -> dict[str, float]:
    y, p, d = window[TARGET_COLUMN], window[PROBABILITY_COLUMN], window[PREDICTION_COLUMN]
    return {
        "f1": f1_score(y, d),
        "precision": precision_score(y, d),
        "recall": recall_score(y, d),
        "accuracy": accuracy_score(y, d),
        "roc_auc": roc_auc_score(y, p),
    }


@pytest.mark.parametrize(
    ("seed", "drift"),
    [(1, None), (2, None), (3, strong_drift(strength=0.5)), (4, strong_drift())],
    ids=["like-1", "like-2", "half-drift", "strong-drift"],
)
def test_the_estimate_is_close_to_the_hidden_labels_quality(model_and_reference, scored, seed, drift) -> None:  # type: ignore[no-untyped-def]
    # GIVEN a labelled window of new customers (drifted or not; churn still follows the same features)
    _, reference = model_and_reference
    window = scored(generate(n_rows=1000, seed=seed, drift=drift))
    truth = realised(window)
    # WHEN its labels are hidden and its quality estimated against the reference
    estimated = estimate_window_quality(window.assign(**{TARGET_COLUMN: np.nan}), reference)
    # THEN every metric is estimated, each within its tolerance of what the labels say
    assert set(estimated) == set(ESTIMATED_METRICS)
    gaps = {name: abs(estimated[name] - truth[name]) for name in truth}
    assert all(gaps[name] <= TOLERANCE[name] for name in gaps), gaps


def test_calibration_beats_the_raw_probabilities_over_many_windows(model_and_reference, scored) -> None:  # type: ignore[no-untyped-def]
    # GIVEN ten unlabelled windows of 300 new customers
    _, reference = model_and_reference
    calibration = calibrate_on_reference(reference)
    identity = Calibration((0.0, 1.0), (0.0, 1.0), rows=0)
    errors: dict[str, list[float]] = {"calibrated": [], "raw": []}
    for seed in range(10, 20):
        window = scored(generate(n_rows=300, seed=seed))
        truth = realised(window)["f1"]
        # WHEN F1 is estimated with the fitted calibration and with none
        for name, used in (("calibrated", calibration), ("raw", identity)):
            estimate = estimate_quality(
                probabilities=window[PROBABILITY_COLUMN].to_numpy(),
                predictions=window[PREDICTION_COLUMN].to_numpy(),
                calibration=used,
            )
            errors[name].append(abs(estimate["f1"] - truth))
    # THEN the calibrated estimate is closer on average (the model is over-confident)
    assert np.mean(errors["calibrated"]) < np.mean(errors["raw"])
    assert np.mean(errors["calibrated"]) < 0.05


def test_calibration_uses_the_holdout_rows_when_the_reference_has_them(model_and_reference) -> None:  # type: ignore[no-untyped-def]
    _, reference = model_and_reference
    # WHEN the rows to calibrate on are chosen THEN only held-out ones (the model knows the others too well)
    assert set(calibration_rows(reference)["split"]) == {"holdout"}
    # AND a reference without a split, or with too few held-out rows, calibrates on all of its rows
    assert len(calibration_rows(reference.drop(columns="split"))) == len(reference)
    few = reference.assign(split=["holdout"] * 20 + ["train"] * (len(reference) - 20))
    assert len(calibration_rows(few)) == len(reference)


def test_certain_probabilities_give_the_counted_quality() -> None:
    # GIVEN a calibration that maps each probability to 0 or 1 and windows whose labels agree with it
    calibration = Calibration((0.49, 0.51), (0.0, 1.0), rows=100)
    rng = np.random.default_rng(5)
    probabilities = rng.choice([0.1, 0.2, 0.8, 0.9], size=400)
    labels = (probabilities > 0.5).astype(int)
    predictions = np.where(rng.random(400) < 0.85, labels, 1 - labels)
    # WHEN estimated THEN expected counts are the counts: the estimate is the counted quality
    counted = counts_of(pd.DataFrame({TARGET_COLUMN: labels, PREDICTION_COLUMN: predictions})).quality()
    estimated = estimate_quality(probabilities=probabilities, predictions=predictions, calibration=calibration)
    assert {k: estimated[k] for k in counted} == pytest.approx(counted)


def test_nothing_to_calibrate_on_or_to_estimate_gives_no_estimate() -> None:
    # GIVEN a reference with a single class WHEN calibrated THEN there is no calibration
    assert fit_calibration(np.array([0.1, 0.2, 0.3]), np.array([0, 0, 0])) is None
    # AND an empty window has no estimate
    calibration = Calibration((0.0, 1.0), (0.0, 1.0), rows=2)
    assert estimate_quality(probabilities=np.array([]), predictions=np.array([]), calibration=calibration) == {}
