"""The limits a window is judged against: the alerts' and the retraining policy's."""

from __future__ import annotations

from dataclasses import dataclass

from churn_common.settings import DEFAULT_MAX_ESTIMATE_ERROR, Settings


@dataclass(frozen=True, slots=True)
class Thresholds:
    drift_share: float
    min_f1: float
    min_precision: float
    min_recall: float
    min_accuracy: float
    max_estimate_error: float = DEFAULT_MAX_ESTIMATE_ERROR

    @classmethod
    def from_settings(cls, settings: Settings) -> Thresholds:
        return cls(
            drift_share=settings.drift_share_threshold,
            min_f1=settings.min_f1,
            min_precision=settings.min_precision,
            min_recall=settings.min_recall,
            min_accuracy=settings.min_accuracy,
            max_estimate_error=settings.max_estimate_error,
        )

    def minimum(self, metric: str) -> float:
        return float(getattr(self, f"min_{metric}"))
