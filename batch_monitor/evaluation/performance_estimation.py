"""Confidence-based performance estimation (CBPE, as NannyML does it): a window's quality before its labels arrive.

Each scored record contributes its calibrated churn probability to the expected confusion counts, which give
F1, precision, recall, accuracy and ROC AUC by the same definitions as the counted ones
(:mod:`batch_monitor.core.quality`). The estimate holds while the relation between features and churn stays the
one the model learnt: covariate shift is fine, concept change is invisible to it. Probabilities are
calibrated by isotonic regression on the reference's holdout rows only (all rows without a split), as the
model is sharper on the rows it was trained on. Alerts on an estimate need
:data:`ESTIMATED_QUALITY_MIN_ROWS` rows, as small windows scatter.

Design notes: docs/batch_monitor.md#performance-estimation
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from batch_monitor.core.quality import QUALITY_METRICS
from churn_common.registry import PREDICTION_COLUMN, PROBABILITY_COLUMN, TARGET_COLUMN
from churn_common.schema import DECISION_THRESHOLD

SPLIT_COLUMN = "split"
HOLDOUT_SPLIT = "holdout"
ROC_AUC = "roc_auc"
ESTIMATED_METRICS: tuple[str, ...] = (*QUALITY_METRICS, ROC_AUC)
# Fewer holdout rows than this (or one class only): calibrate on every reference row instead.
MIN_CALIBRATION_ROWS = 100
ESTIMATED_QUALITY_MIN_ROWS = 300


@dataclass(frozen=True, slots=True)
class Calibration:
    """A monotone map from the model's probability to the observed churn rate, kept as its breakpoints."""

    points: tuple[float, ...]
    rates: tuple[float, ...]
    rows: int

    def apply(self, probabilities: np.ndarray) -> np.ndarray:
        """Linear between breakpoints and flat beyond them, as scikit-learn's ``out_of_bounds="clip"``."""
        return np.interp(np.asarray(probabilities, dtype="float64"), self.points, self.rates)


@dataclass(frozen=True, slots=True)
class ExpectedCounts:
    true_positives: float
    false_positives: float
    false_negatives: float
    true_negatives: float

    @property
    def labelled(self) -> float:
        return self.true_positives + self.false_positives + self.false_negatives + self.true_negatives


def fit_calibration(probabilities: np.ndarray, labels: np.ndarray) -> Calibration | None:
    """Isotonic regression of the labels on the probabilities; ``None`` when both classes are not present."""
    from sklearn.isotonic import IsotonicRegression

    labels = np.asarray(labels, dtype="float64")
    if len(labels) == 0 or np.unique(labels).size != 2:
        return None
    fitted = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(
        np.asarray(probabilities, dtype="float64"), labels
    )
    return Calibration(
        tuple(float(x) for x in fitted.X_thresholds_), tuple(float(y) for y in fitted.y_thresholds_), len(labels)
    )


def calibration_rows(reference: pd.DataFrame) -> pd.DataFrame:
    """The reference's labelled holdout rows, or all its labelled rows when it has too few of those."""
    labelled = reference[reference[TARGET_COLUMN].notna()]
    if SPLIT_COLUMN in labelled:
        holdout = labelled[labelled[SPLIT_COLUMN] == HOLDOUT_SPLIT]
        if len(holdout) >= MIN_CALIBRATION_ROWS and holdout[TARGET_COLUMN].nunique() == 2:
            return holdout
    return labelled


def calibrate_on_reference(reference: pd.DataFrame) -> Calibration | None:
    rows = calibration_rows(reference)
    return fit_calibration(rows[PROBABILITY_COLUMN].to_numpy(), rows[TARGET_COLUMN].to_numpy())


def expected_counts(calibrated: np.ndarray, predictions: np.ndarray) -> ExpectedCounts:
    positive = np.asarray(predictions) == 1
    return ExpectedCounts(
        true_positives=float(calibrated[positive].sum()),
        false_positives=float((1.0 - calibrated[positive]).sum()),
        false_negatives=float(calibrated[~positive].sum()),
        true_negatives=float((1.0 - calibrated[~positive]).sum()),
    )


def expected_roc_auc(calibrated: np.ndarray, scores: np.ndarray) -> float | None:
    """Area under the expected ROC curve: the model's ranking, each record a fractional positive."""
    order = np.argsort(-np.asarray(scores, dtype="float64"), kind="stable")
    ranked = calibrated[order]
    positives, negatives = float(ranked.sum()), float((1.0 - ranked).sum())
    if positives <= 0 or negatives <= 0:
        return None
    true_rate = np.concatenate([[0.0], np.cumsum(ranked)]) / positives
    false_rate = np.concatenate([[0.0], np.cumsum(1.0 - ranked)]) / negatives
    return float(np.trapezoid(true_rate, false_rate))


def estimate_quality(
    *, probabilities: np.ndarray, predictions: np.ndarray, calibration: Calibration
) -> dict[str, float]:
    """Estimated F1, precision, recall, accuracy and ROC AUC of the stored decisions (empty for no rows)."""
    probabilities = np.asarray(probabilities, dtype="float64")
    if probabilities.size == 0:
        return {}
    calibrated = calibration.apply(probabilities)
    counts = expected_counts(calibrated, np.asarray(predictions))
    estimated = {name: metric(counts) for name, metric in QUALITY_METRICS.items()}
    auc = expected_roc_auc(calibrated, probabilities)
    return estimated if auc is None else {**estimated, ROC_AUC: auc}


def estimate_window_quality(rows: pd.DataFrame, reference: pd.DataFrame) -> Mapping[str, float]:
    """The window's estimated quality against its model version's reference (empty if it cannot calibrate)."""
    calibration = calibrate_on_reference(reference)
    if calibration is None:
        return {}
    return estimate_quality(
        probabilities=rows[PROBABILITY_COLUMN].to_numpy(dtype="float64"),
        predictions=rows[PREDICTION_COLUMN].to_numpy(),
        calibration=calibration,
    )


def estimate_challenger_f1(probabilities: np.ndarray, reference: pd.DataFrame) -> float | None:
    """The shadow-scored challenger's estimated F1 on the decisions it would have stored had it been serving,
    calibrated on its own reference (its probabilities are another model's); ``None`` without rows or
    calibration."""
    calibration = calibrate_on_reference(reference)
    probabilities = np.asarray(probabilities, dtype="float64")
    if calibration is None or probabilities.size == 0:
        return None
    predictions = (probabilities >= DECISION_THRESHOLD).astype("int64")
    return estimate_quality(probabilities=probabilities, predictions=predictions, calibration=calibration)["f1"]
