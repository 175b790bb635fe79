"""Alert decisions and messages (pure): a window's evaluation and the thresholds in, verdicts and e-mails out.

Each kind judges a window as crossed, clear or unknown (it could not be judged); the e-mail of a crossed kind
says what crossed, by how much, and links the Evidently report and the Grafana dashboard at that time. Whether
a crossing is e-mailed, held back by the cool-down or ends in a recovery message is decided per episode
(:mod:`batch_monitor.episodes`) and recorded in the ledger (:mod:`batch_monitor.alert_ledger`).

Quality is judged on the labelled records when there are enough of them, otherwise on the estimate from the
calibrated probabilities (:mod:`batch_monitor.performance_estimation`) once the window has
:data:`ESTIMATED_QUALITY_MIN_ROWS` rows; its message then says the figures are estimated.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from batch_monitor.episodes import Verdict
from batch_monitor.evaluation import EvaluationStatus, WindowEvaluation
from batch_monitor.performance_estimation import ESTIMATED_QUALITY_MIN_ROWS, ROC_AUC
from batch_monitor.windows import Window
from churn_common.settings import Settings

SUBJECT_MAX_CHARS = 100
SUBJECT_PREFIX = "[churn-model]"
# The provisioned dashboard of infra/grafana/dashboards/json/churn-model-monitoring.json.
DASHBOARD_PATH = "d/churn-monitoring/churn-model-monitoring"
# The link opens the dashboard on the alert's time, with this much before and after it.
DASHBOARD_MARGIN = timedelta(minutes=30)
# The churn probability is two-humped, so a few churners more or less move a small window's score a lot: in
# 1,000 windows resampled from each reference, 5 to 7 % of those of 50 or 60 rows scored 0.25 or more, 1.7 %
# at 100 rows, none from 200 rows (highest 0.25 at 200, 0.19 at 300). Smaller windows are not judged on it.
PREDICTION_DRIFT_MIN_ROWS = 200


class AlertKind(StrEnum):
    DATA_DRIFT = "data_drift"
    PREDICTION_DRIFT = "prediction_drift"
    QUALITY = "quality"
    EARLY_WARNING = "early_warning"


@dataclass(frozen=True, slots=True)
class Thresholds:
    drift_share: float
    min_f1: float
    min_precision: float
    min_recall: float
    min_accuracy: float

    @classmethod
    def from_settings(cls, settings: Settings) -> Thresholds:
        return cls(
            drift_share=settings.drift_share_threshold,
            min_f1=settings.min_f1,
            min_precision=settings.min_precision,
            min_recall=settings.min_recall,
            min_accuracy=settings.min_accuracy,
        )

    def minimum(self, metric: str) -> float:
        return float(getattr(self, f"min_{metric}"))


@dataclass(frozen=True, slots=True)
class Alert:
    kind: AlertKind
    window: Window
    subject: str
    body: str


@dataclass(frozen=True, slots=True)
class Links:
    report_uri: str | None = None
    dashboard_url: str | None = None

    def lines(self) -> list[str]:
        lines = [f"Report: {self.report_uri or 'not stored'}"]
        return [*lines, f"Dashboard: {self.dashboard_url}"] if self.dashboard_url else lines


def dashboard_url(grafana_url: str, *, start: datetime, end: datetime) -> str:
    """The monitoring dashboard from a little before ``start`` to a little after ``end``."""
    since = int((start - DASHBOARD_MARGIN).timestamp() * 1000)
    until = int((end + DASHBOARD_MARGIN).timestamp() * 1000)
    return f"{grafana_url.rstrip('/')}/{DASHBOARD_PATH}?from={since}&to={until}"


# --- verdicts -------------------------------------------------------------------------------------------


def _data_drift_verdict(evaluation: WindowEvaluation, thresholds: Thresholds) -> Verdict:
    if evaluation.drift_share is None:
        return Verdict.UNKNOWN
    return Verdict.CROSSED if evaluation.drift_share > thresholds.drift_share else Verdict.CLEAR


def _drift_rows(evaluation: WindowEvaluation) -> int:
    return evaluation.n_drift_rows if evaluation.n_drift_rows is not None else evaluation.n_rows


def _prediction_drift_verdict(evaluation: WindowEvaluation, thresholds: Thresholds) -> Verdict:
    if evaluation.prediction_drift is None or _drift_rows(evaluation) < PREDICTION_DRIFT_MIN_ROWS:
        return Verdict.UNKNOWN
    return Verdict.CROSSED if evaluation.prediction_drift.drifted else Verdict.CLEAR


def judged_quality(evaluation: WindowEvaluation) -> tuple[dict[str, float], bool]:
    """The quality figures a verdict rests on and whether they are estimated: counted when labelled, else
    the estimate of a window large enough for it (ROC AUC has no minimum and is left out)."""
    if evaluation.quality:
        return evaluation.quality, False
    if _drift_rows(evaluation) < ESTIMATED_QUALITY_MIN_ROWS:
        return {}, True
    return {k: v for k, v in evaluation.estimated_quality.items() if k != ROC_AUC}, True


def _below(quality: Mapping[str, float], thresholds: Thresholds) -> dict[str, float]:
    return {name: value for name, value in quality.items() if value < thresholds.minimum(name)}


def _quality_verdict(evaluation: WindowEvaluation, thresholds: Thresholds) -> Verdict:
    quality, _ = judged_quality(evaluation)
    if not quality:
        return Verdict.UNKNOWN
    return Verdict.CROSSED if _below(quality, thresholds) else Verdict.CLEAR


def window_verdicts(evaluation: WindowEvaluation, thresholds: Thresholds) -> dict[AlertKind, Verdict]:
    """Every window kind's verdict; all unknown for a window that was not tested."""
    if evaluation.status is not EvaluationStatus.EVALUATED:
        return dict.fromkeys(_RULES, Verdict.UNKNOWN)
    return {kind: rule.verdict(evaluation, thresholds) for kind, rule in _RULES.items()}


# --- messages -------------------------------------------------------------------------------------------


def _header(evaluation: WindowEvaluation) -> list[str]:
    window = evaluation.window
    return [
        f"Window: {window.start.isoformat()} to {window.end.isoformat()} (UTC)",
        f"Model version: {evaluation.model_version}",
        f"Rows: {evaluation.n_rows} ({evaluation.n_labelled} labelled)",
        *([f"Drift from a uniform sample of {evaluation.n_drift_rows} rows"] if evaluation.drift_sampled else []),
    ]


def _drift_lines(evaluation: WindowEvaluation, thresholds: Thresholds) -> list[str]:
    drifted = evaluation.drifted_columns
    share = evaluation.drift_share or 0.0
    relation = ">" if share > thresholds.drift_share else "<="
    return [
        f"Drifted columns: {len(drifted)} of {len(evaluation.columns)}"
        f" (share {share:.2f} {relation} {thresholds.drift_share:.2f})",
        *(f"  - {c.column}: {c.method} {c.score:.3f} (threshold {c.threshold:g})" for c in drifted),
    ]


def _prediction_lines(evaluation: WindowEvaluation, _thresholds: Thresholds) -> list[str]:
    p = evaluation.prediction_drift
    if p is None:
        return []
    state = "drifted" if p.drifted else "not drifted"
    return [f"Churn probability: {p.method} {p.score:.3f} (threshold {p.threshold:g}, {state})"]


def _quality_lines(evaluation: WindowEvaluation, thresholds: Thresholds) -> list[str]:
    quality, estimated = judged_quality(evaluation)
    if not quality:
        return ["Quality: not computed (too few labelled rows or a single class, and too few rows to estimate)"]
    lines = []
    if estimated:
        lines.append(
            "Quality estimated (labels absent): from the churn probabilities calibrated on the reference's holdout"
        )
    suffix = " (estimated)" if estimated else ""
    for name, value in quality.items():
        minimum = thresholds.minimum(name)
        lines.append(f"  {name}: {value:.3f}{suffix} (minimum {minimum:.2f}){'  BELOW' if value < minimum else ''}")
    if estimated and ROC_AUC in evaluation.estimated_quality:
        lines.append(f"  roc_auc: {evaluation.estimated_quality[ROC_AUC]:.3f} (estimated)")
    return lines


def _data_drift_alert(evaluation: WindowEvaluation, thresholds: Thresholds, links: Links) -> Alert:
    drifted = evaluation.drifted_columns
    subject = alert_subject(
        f"Data drift in {len(drifted)}/{len(evaluation.columns)} columns (v{evaluation.model_version})",
        evaluation.window,
    )
    lines = [
        *_header(evaluation),
        *_drift_lines(evaluation, thresholds),
        *_prediction_lines(evaluation, thresholds),
        *_quality_lines(evaluation, thresholds),
        *links.lines(),
    ]
    return Alert(AlertKind.DATA_DRIFT, evaluation.window, subject, "\n".join(lines))


def _prediction_drift_alert(evaluation: WindowEvaluation, thresholds: Thresholds, links: Links) -> Alert:
    p = evaluation.prediction_drift
    assert p is not None
    subject = alert_subject(
        f"Prediction drift: churn probability {p.score:.2f} (v{evaluation.model_version})",
        evaluation.window,
    )
    lines = [
        *_header(evaluation),
        *_prediction_lines(evaluation, thresholds),
        *_drift_lines(evaluation, thresholds),
        *_quality_lines(evaluation, thresholds),
        *links.lines(),
    ]
    return Alert(AlertKind.PREDICTION_DRIFT, evaluation.window, subject, "\n".join(lines))


def _quality_alert(evaluation: WindowEvaluation, thresholds: Thresholds, links: Links) -> Alert:
    quality, estimated = judged_quality(evaluation)
    names = ", ".join(_below(quality, thresholds))
    low = "Low estimated quality" if estimated else "Low quality"
    subject = alert_subject(f"{low}: {names} (v{evaluation.model_version})", evaluation.window)
    lines = [
        *_header(evaluation),
        f"Metrics below their minimum{' (estimated)' if estimated else ''}: {names}",
        *_quality_lines(evaluation, thresholds),
        *links.lines(),
    ]
    return Alert(AlertKind.QUALITY, evaluation.window, subject, "\n".join(lines))


@dataclass(frozen=True, slots=True)
class _Rule:
    title: str
    verdict: Callable[[WindowEvaluation, Thresholds], Verdict]
    alert: Callable[[WindowEvaluation, Thresholds, Links], Alert]
    status_lines: Callable[[WindowEvaluation, Thresholds], list[str]]


_RULES: Mapping[AlertKind, _Rule] = {
    AlertKind.DATA_DRIFT: _Rule("Data drift", _data_drift_verdict, _data_drift_alert, _drift_lines),
    AlertKind.PREDICTION_DRIFT: _Rule(
        "Prediction drift", _prediction_drift_verdict, _prediction_drift_alert, _prediction_lines
    ),
    AlertKind.QUALITY: _Rule("Low quality", _quality_verdict, _quality_alert, _quality_lines),
}
WINDOW_KINDS: tuple[AlertKind, ...] = tuple(_RULES)
KIND_TITLES: Mapping[AlertKind, str] = {
    **{kind: rule.title for kind, rule in _RULES.items()},
    AlertKind.EARLY_WARNING: "Early warning",
}


def decide_alerts(
    evaluation: WindowEvaluation,
    thresholds: Thresholds,
    *,
    report_uri: str | None,
    dashboard_url: str | None = None,
) -> list[Alert]:
    """One alert per kind whose line this window crossed: dataset drift beyond the share, the churn probability
    drifted, or any quality metric (counted, else estimated) below its minimum."""
    links = Links(report_uri, dashboard_url)
    verdicts = window_verdicts(evaluation, thresholds)
    return [
        rule.alert(evaluation, thresholds, links) for kind, rule in _RULES.items() if verdicts[kind] is Verdict.CROSSED
    ]


def merge_alerts(candidates: Sequence[Alert]) -> list[Alert]:
    """One alert per window and kind (the ledger's key), even when several model versions crossed a line."""
    grouped: dict[tuple[Window, AlertKind], list[Alert]] = {}
    for alert in candidates:
        grouped.setdefault((alert.window, alert.kind), []).append(alert)
    merged = []
    for (window, kind), group in grouped.items():
        if len(group) == 1:
            merged.append(group[0])
            continue
        subject = alert_subject(f"{KIND_TITLES[kind]} for {len(group)} model versions", window)
        merged.append(Alert(kind, window, subject, "\n\n".join(a.body for a in group)))
    return merged


def recovery_alert(
    kind: AlertKind,
    evaluations: Sequence[WindowEvaluation],
    thresholds: Thresholds,
    *,
    since: datetime | None,
    links: Links,
) -> Alert:
    """The one message that ends an episode: this window no longer crosses the kind's line."""
    rule = _RULES[kind]
    window = evaluations[0].window
    versions = ", ".join(f"v{e.model_version}" for e in evaluations)
    subject = alert_subject(f"Recovered: {rule.title.lower()} ({versions})", window)
    began = f" (episode since the window of {since.isoformat()})" if since is not None else ""
    lines = [f"{rule.title}: back within its limits in this window{began}."]
    for evaluation in evaluations:
        lines.extend(["", *_header(evaluation), *rule.status_lines(evaluation, thresholds)])
    lines.extend(["", *links.lines()])
    return Alert(kind, window, subject, "\n".join(lines))


def held_back(alert: Alert, *, last_notified: datetime, cooldown: timedelta) -> Alert:
    """The record of a crossing inside an episode's cool-down: kept for the dashboard, not e-mailed."""
    note = (
        f"Not e-mailed (cool-down): the episode's last e-mail was for the window of {last_notified.isoformat()};"
        f" a reminder goes out for windows from {(last_notified + cooldown).isoformat()} while the line is crossed."
    )
    return replace(alert, body=f"{note}\n\n{alert.body}")


def _fit_subject(what: str, when: str) -> str:
    """SNS subjects must be ASCII, single-line, at most 100 characters: ``when`` is kept, ``what`` shortened."""
    room = SUBJECT_MAX_CHARS - len(SUBJECT_PREFIX) - 1 - len(when)
    what = " ".join(what.encode("ascii", "replace").decode().split())
    if len(what) > room:
        what = what[: room - 3] + "..."
    return f"{SUBJECT_PREFIX} {what}{when}"


def alert_subject(what: str, window: Window) -> str:
    """``[churn-model] <what> | window 2026-11-26 06:50-06:55 UTC`` (seconds shown for sub-minute windows)."""
    clock = "%H:%M" if window.start.second == window.end.second == 0 else "%H:%M:%S"
    end_format = clock if window.end.date() == window.start.date() else f"%Y-%m-%d {clock}"
    return _fit_subject(
        what, f" | window {window.start.strftime(f'%Y-%m-%d {clock}')}-{window.end.strftime(end_format)} UTC"
    )


def instant_subject(what: str, at: datetime) -> str:
    """``[churn-model] <what> | at 2026-11-26 06:52:13 UTC``: for alerts about a moment, not a window."""
    return _fit_subject(what, f" | at {at.strftime('%Y-%m-%d %H:%M:%S')} UTC")
