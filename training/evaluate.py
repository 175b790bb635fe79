"""Holdout metrics and the promotion gate (pure functions, no MLflow)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score

from churn_common.schema import DECISION_THRESHOLD as DEFAULT_DECISION_THRESHOLD

if TYPE_CHECKING:
    from churn_common.settings import Settings


@dataclass(frozen=True, slots=True)
class Gate:
    """Minimum holdout metrics a model needs before it may carry the serving alias."""

    min_f1: float = 0.70
    min_precision: float = 0.70
    min_recall: float = 0.70
    min_accuracy: float = 0.70

    @classmethod
    def from_settings(cls, settings: Settings) -> Gate:
        """The gate of the alerts' minimums (``MIN_*``), which every served version passes."""
        return cls(settings.min_f1, settings.min_precision, settings.min_recall, settings.min_accuracy)

    def limits(self) -> dict[str, float]:
        """The minimum of each gated metric, by the metric's name."""
        return {
            "f1": self.min_f1,
            "precision": self.min_precision,
            "recall": self.min_recall,
            "accuracy": self.min_accuracy,
        }

    def failures(self, metrics: dict[str, float]) -> list[str]:
        return [
            f"{name} {metrics[name]:.3f} < {limit:.2f}"
            for name, limit in self.limits().items()
            if metrics[name] < limit
        ]


def classification_metrics(
    labels: np.ndarray, probabilities: np.ndarray, *, threshold: float = DEFAULT_DECISION_THRESHOLD
) -> dict[str, float]:
    predicted = (probabilities >= threshold).astype(int)
    return {
        "f1": float(f1_score(labels, predicted, zero_division=0)),
        "precision": float(precision_score(labels, predicted, zero_division=0)),
        "recall": float(recall_score(labels, predicted, zero_division=0)),
        "accuracy": float(accuracy_score(labels, predicted)),
        "roc_auc": float(roc_auc_score(labels, probabilities)) if len(set(labels)) > 1 else float("nan"),
    }
