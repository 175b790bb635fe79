"""Alert rules (pure): a window's evaluation and the thresholds in, one verdict per kind out, decided once.

Each kind judges a window as crossed, clear or unknown (it could not be judged). :func:`judge` decides every
kind of one window and model version; the messages (:mod:`batch_monitor.alerting.messages`) and the episodes
(:mod:`batch_monitor.alerting.episodes`, through the ledger) read those verdicts and never judge again.

Quality is judged on the labelled records when there are enough of them, otherwise on the estimate from the
calibrated probabilities (:mod:`batch_monitor.evaluation.performance_estimation`) once the window has
:data:`ESTIMATED_QUALITY_MIN_ROWS` rows.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from batch_monitor.alerting.episodes import Verdict, merge_verdicts
from batch_monitor.core import EvaluationStatus, Thresholds, WindowEvaluation
from batch_monitor.evaluation.performance_estimation import ESTIMATED_QUALITY_MIN_ROWS, ROC_AUC

# The churn probability is two-humped, so a few churners more or less move a small window's score a lot: in
# 1,000 windows resampled from each reference, 5 to 7 % of those of 50 or 60 rows scored 0.25 or more, 1.7 %
# at 100 rows, none from 200 rows (highest 0.25 at 200, 0.19 at 300). Smaller windows are not judged on it.
PREDICTION_DRIFT_MIN_ROWS = 200


class AlertKind(StrEnum):
    DATA_DRIFT = "data_drift"
    PREDICTION_DRIFT = "prediction_drift"
    QUALITY = "quality"
    ESTIMATE_ERROR = "estimate_error"
    EARLY_WARNING = "early_warning"


def drift_rows(evaluation: WindowEvaluation) -> int:
    return evaluation.n_drift_rows if evaluation.n_drift_rows is not None else evaluation.n_rows


def judged_quality(evaluation: WindowEvaluation) -> tuple[dict[str, float], bool]:
    """The quality figures a verdict rests on and whether they are estimated: counted when labelled, else
    the estimate of a window large enough for it (ROC AUC has no minimum and is left out)."""
    if evaluation.quality:
        return evaluation.quality, False
    if drift_rows(evaluation) < ESTIMATED_QUALITY_MIN_ROWS:
        return {}, True
    return {k: v for k, v in evaluation.estimated_quality.items() if k != ROC_AUC}, True


def below(quality: Mapping[str, float], thresholds: Thresholds) -> dict[str, float]:
    """The figures under their minimum."""
    return {name: value for name, value in quality.items() if value < thresholds.minimum(name)}


def _data_drift(evaluation: WindowEvaluation, thresholds: Thresholds) -> Verdict:
    if evaluation.drift_share is None:
        return Verdict.UNKNOWN
    return Verdict.CROSSED if evaluation.drift_share > thresholds.drift_share else Verdict.CLEAR


def _prediction_drift(evaluation: WindowEvaluation, _thresholds: Thresholds) -> Verdict:
    if evaluation.prediction_drift is None or drift_rows(evaluation) < PREDICTION_DRIFT_MIN_ROWS:
        return Verdict.UNKNOWN
    return Verdict.CROSSED if evaluation.prediction_drift.drifted else Verdict.CLEAR


def _quality(evaluation: WindowEvaluation, thresholds: Thresholds) -> Verdict:
    quality, _ = judged_quality(evaluation)
    if not quality:
        return Verdict.UNKNOWN
    return Verdict.CROSSED if below(quality, thresholds) else Verdict.CLEAR


def _estimate_error(evaluation: WindowEvaluation, thresholds: Thresholds) -> Verdict:
    """The estimate that stood before the labels was far off: the relation between features and churn has
    likely changed (what confidence-based estimation cannot see), so later unlabelled windows' estimates are
    not to be trusted either. A window labelled at scoring time is not judged: no estimate stood there."""
    if evaluation.estimate_error is None or not evaluation.estimate_stood:
        return Verdict.UNKNOWN
    return Verdict.CROSSED if abs(evaluation.estimate_error) > thresholds.max_estimate_error else Verdict.CLEAR


_RULES: Mapping[AlertKind, Callable[[WindowEvaluation, Thresholds], Verdict]] = {
    AlertKind.DATA_DRIFT: _data_drift,
    AlertKind.PREDICTION_DRIFT: _prediction_drift,
    AlertKind.QUALITY: _quality,
    AlertKind.ESTIMATE_ERROR: _estimate_error,
}
# The kinds judged per window (the early warning is about moments, :mod:`batch_monitor.early_warning`).
WINDOW_KINDS: tuple[AlertKind, ...] = tuple(_RULES)


@dataclass(frozen=True, slots=True)
class Judgement:
    """One window and model version judged against the thresholds: every window kind's verdict."""

    evaluation: WindowEvaluation
    thresholds: Thresholds
    verdicts: Mapping[AlertKind, Verdict]

    @property
    def crossed(self) -> tuple[AlertKind, ...]:
        return tuple(kind for kind, verdict in self.verdicts.items() if verdict is Verdict.CROSSED)


def judge(evaluation: WindowEvaluation, thresholds: Thresholds) -> Judgement:
    """Every window kind's verdict; all unknown for a window that was not tested."""
    if evaluation.status is not EvaluationStatus.EVALUATED:
        verdicts = dict.fromkeys(WINDOW_KINDS, Verdict.UNKNOWN)
    else:
        verdicts = {kind: rule(evaluation, thresholds) for kind, rule in _RULES.items()}
    return Judgement(evaluation, thresholds, verdicts)


def judged_kinds(judgement: Judgement) -> dict[str, bool]:
    """Per kind judged (crossed or clear, not unknown): whether its line was crossed."""
    return {
        str(kind): verdict is Verdict.CROSSED
        for kind, verdict in judgement.verdicts.items()
        if verdict is not Verdict.UNKNOWN
    }


def window_verdicts(judgements: Sequence[Judgement]) -> dict[AlertKind, Verdict]:
    """One verdict per kind for a window over its model versions (see :func:`merge_verdicts`)."""
    return {kind: merge_verdicts([j.verdicts[kind] for j in judgements]) for kind in WINDOW_KINDS}
