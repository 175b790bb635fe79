"""When to retrain and when to promote: pure functions over plain values, no MLflow, no database.

Retrain when the last ``after_windows`` windows of the serving version that have quality figures (enough
labelled rows of both classes) are all below the quality thresholds of the alerts. Windows already used
by an earlier retraining of that version do not count again, so the same windows never trigger twice and
a version that stays bad is retrained at most once per ``after_windows`` new windows. Windows without
labels say nothing about quality and neither break nor extend a run of bad ones.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from batch_monitor.core import Thresholds, Window
from churn_common.settings import Settings

PROMOTION_METRIC = "f1"


class Verdict(StrEnum):
    DISABLED = "disabled"
    TOO_FEW_WINDOWS = "too_few_windows"
    QUALITY_OK = "quality_ok"
    RETRAIN = "retrain"


@dataclass(frozen=True, slots=True)
class WindowQuality:
    window: Window
    model_version: str
    quality: Mapping[str, float]


@dataclass(frozen=True, slots=True)
class RetrainingPolicy:
    enabled: bool
    after_windows: int
    thresholds: Thresholds

    @classmethod
    def from_settings(cls, settings: Settings) -> RetrainingPolicy:
        return cls(settings.retrain_enabled, settings.retrain_after_windows, Thresholds.from_settings(settings))


@dataclass(frozen=True, slots=True)
class RetrainingDecision:
    verdict: Verdict
    serving_version: str
    windows: tuple[WindowQuality, ...] = ()

    @property
    def retrain(self) -> bool:
        return self.verdict is Verdict.RETRAIN

    @property
    def first_window_start(self) -> datetime:
        return self.windows[0].window.start

    @property
    def last_window_end(self) -> datetime:
        return self.windows[-1].window.end


def metrics_below(quality: Mapping[str, float], thresholds: Thresholds) -> list[str]:
    """The quality metrics under their minimum (the same rule as the quality alert)."""
    return [name for name, value in quality.items() if value < thresholds.minimum(name)]


def decide_retraining(
    history: Sequence[WindowQuality],
    *,
    serving_version: str,
    policy: RetrainingPolicy,
    used_until: datetime | None = None,
) -> RetrainingDecision:
    """``history``: evaluated windows in any order; ``used_until``: end of the last window an earlier
    retraining of ``serving_version`` was triggered by (windows starting before it are not counted)."""
    if not policy.enabled:
        return RetrainingDecision(Verdict.DISABLED, serving_version)
    candidates = sorted(
        (
            w
            for w in history
            if w.model_version == serving_version and w.quality and (used_until is None or w.window.start >= used_until)
        ),
        key=lambda w: w.window.start,
    )
    recent = tuple(candidates[-policy.after_windows :])
    if len(recent) < policy.after_windows:
        return RetrainingDecision(Verdict.TOO_FEW_WINDOWS, serving_version, recent)
    if all(metrics_below(w.quality, policy.thresholds) for w in recent):
        return RetrainingDecision(Verdict.RETRAIN, serving_version, recent)
    return RetrainingDecision(Verdict.QUALITY_OK, serving_version, recent)


@dataclass(frozen=True, slots=True)
class Promotion:
    promote: bool
    reason: str


def decide_promotion(
    challenger: Mapping[str, float], serving: Mapping[str, float], *, gate_failures: Sequence[str]
) -> Promotion:
    """Promote only a challenger that beats the serving version on the same holdout (by F1) and also
    passes the gate every served version passes (``make model-registry``'s minimums)."""
    new, old = challenger[PROMOTION_METRIC], serving[PROMOTION_METRIC]
    comparison = f"challenger {PROMOTION_METRIC} {new:.3f} vs serving {old:.3f}"
    if new <= old:
        return Promotion(False, f"{comparison}: not better")
    if gate_failures:
        return Promotion(False, f"{comparison}: better, but fails the gate ({'; '.join(gate_failures)})")
    return Promotion(True, f"{comparison}: better, passes the gate")
