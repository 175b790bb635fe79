"""Alert messages (pure): the e-mail of each crossed kind, of a recovery and of a held-back crossing.

The e-mail of a crossed kind says what crossed, by how much, and links the Evidently report and the Grafana
dashboard at that time (without Grafana, as locally: the Evidently UI's dashboard, see :func:`dashboard_link`);
quality judged on the estimate says its figures are estimated. Which kinds crossed is read from a
:class:`~batch_monitor.alerting.rules.Judgement`, never judged again here; which message a kind's ledger row
gets follows from what the ledger found due (:func:`message_for`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from batch_monitor.alerting.episodes import Action
from batch_monitor.alerting.ledger import Due
from batch_monitor.alerting.publishing import fit_subject
from batch_monitor.alerting.rules import AlertKind, Judgement, below, judged_quality
from batch_monitor.core import Thresholds, Window, WindowEvaluation
from batch_monitor.evaluation.performance_estimation import ROC_AUC

SUBJECT_PREFIX = "[churn-model]"
# The provisioned dashboard of infra/grafana/dashboards/json/churn-model-monitoring.json.
DASHBOARD_PATH = "d/churn-monitoring/churn-model-monitoring"
# The link opens the dashboard on the alert's time, with this much before and after it.
DASHBOARD_MARGIN = timedelta(minutes=30)


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


def dashboard_link(*, grafana_url: str | None, fallback_url: str | None, start: datetime, end: datetime) -> str | None:
    """Grafana's dashboard at the time when Grafana is configured, else ``fallback_url``: the local stack has no
    Grafana, and its Evidently UI plots every window, so an e-mail still leads to the figures behind it."""
    if grafana_url:
        return dashboard_url(grafana_url, start=start, end=end)
    return fallback_url


def alert_subject(what: str, window: Window) -> str:
    """``[churn-model] <what> | window 2026-11-26 06:50-06:55 UTC`` (seconds shown for sub-minute windows)."""
    clock = "%H:%M" if window.start.second == window.end.second == 0 else "%H:%M:%S"
    end_format = clock if window.end.date() == window.start.date() else f"%Y-%m-%d {clock}"
    return fit_subject(
        SUBJECT_PREFIX,
        what,
        f" | window {window.start.strftime(f'%Y-%m-%d {clock}')}-{window.end.strftime(end_format)} UTC",
    )


def instant_subject(what: str, at: datetime) -> str:
    """``[churn-model] <what> | at 2026-11-26 06:52:13 UTC``: for alerts about a moment, not a window."""
    return fit_subject(SUBJECT_PREFIX, what, f" | at {at.strftime('%Y-%m-%d %H:%M:%S')} UTC")


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


def _estimate_lines(evaluation: WindowEvaluation, thresholds: Thresholds) -> list[str]:
    error, estimated, realised = evaluation.estimate_error, evaluation.estimated_f1, evaluation.f1
    if error is None or estimated is None or realised is None:
        return ["Estimate error: not known (no realised F1 from labels yet)"]
    relation = ">" if abs(error) > thresholds.max_estimate_error else "<="
    return [
        f"Estimated F1 {estimated:.3f} vs realised F1 {realised:.3f}: off by {error:+.3f}"
        f" (|error| {relation} {thresholds.max_estimate_error:.2f})",
        f"Label coverage: {evaluation.label_coverage or 0.0:.0%} of the window's records",
    ]


def _estimate_error_alert(evaluation: WindowEvaluation, thresholds: Thresholds, links: Links) -> Alert:
    assert evaluation.estimate_error is not None
    subject = alert_subject(
        f"Quality estimate off by {evaluation.estimate_error:+.2f} F1 (v{evaluation.model_version})",
        evaluation.window,
    )
    lines = [
        *_header(evaluation),
        *_estimate_lines(evaluation, thresholds),
        "Estimates of windows still without labels rest on the same calibration: treat them with doubt.",
        *_quality_lines(evaluation, thresholds),
        *_drift_lines(evaluation, thresholds),
        *links.lines(),
    ]
    return Alert(AlertKind.ESTIMATE_ERROR, evaluation.window, subject, "\n".join(lines))


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
    names = ", ".join(below(quality, thresholds))
    low = "Low estimated quality" if estimated else "Low quality"
    subject = alert_subject(f"{low}: {names} (v{evaluation.model_version})", evaluation.window)
    lines = [
        *_header(evaluation),
        f"Metrics below their minimum{' (estimated)' if estimated else ''}: {names}",
        *_quality_lines(evaluation, thresholds),
        *links.lines(),
    ]
    return Alert(AlertKind.QUALITY, evaluation.window, subject, "\n".join(lines))


Build = Callable[[WindowEvaluation, Thresholds, Links], Alert]


@dataclass(frozen=True, slots=True)
class _Text:
    title: str
    alert: Build
    status_lines: Callable[[WindowEvaluation, Thresholds], list[str]]


_TEXTS: Mapping[AlertKind, _Text] = {
    AlertKind.DATA_DRIFT: _Text("Data drift", _data_drift_alert, _drift_lines),
    AlertKind.PREDICTION_DRIFT: _Text("Prediction drift", _prediction_drift_alert, _prediction_lines),
    AlertKind.QUALITY: _Text("Low quality", _quality_alert, _quality_lines),
    AlertKind.ESTIMATE_ERROR: _Text("Quality estimate error", _estimate_error_alert, _estimate_lines),
}
KIND_TITLES: Mapping[AlertKind, str] = {
    **{kind: text.title for kind, text in _TEXTS.items()},
    AlertKind.EARLY_WARNING: "Early warning",
}


def crossing_alerts(judgement: Judgement, links: Links) -> list[Alert]:
    """One alert per kind whose line the window crossed: dataset drift beyond the share, the churn probability
    drifted, or any quality metric (counted, else estimated) below its minimum."""
    return [_TEXTS[kind].alert(judgement.evaluation, judgement.thresholds, links) for kind in judgement.crossed]


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


def recovery_alert(kind: AlertKind, judgements: Sequence[Judgement], *, since: datetime | None, links: Links) -> Alert:
    """The one message that ends an episode: this window no longer crosses the kind's line."""
    text = _TEXTS[kind]
    window = judgements[0].evaluation.window
    versions = ", ".join(f"v{j.evaluation.model_version}" for j in judgements)
    subject = alert_subject(f"Recovered: {text.title.lower()} ({versions})", window)
    began = f" (episode since the window of {since.isoformat()})" if since is not None else ""
    lines = [f"{text.title}: back within its limits in this window{began}."]
    for judgement in judgements:
        evaluation = judgement.evaluation
        lines.extend(["", *_header(evaluation), *text.status_lines(evaluation, judgement.thresholds)])
    lines.extend(["", *links.lines()])
    return Alert(kind, window, subject, "\n".join(lines))


def held_back(alert: Alert, *, last_notified: datetime, cooldown: timedelta) -> Alert:
    """The record of a crossing inside an episode's cool-down: kept for the dashboard, not e-mailed."""
    note = (
        f"Not e-mailed (cool-down): the episode's last e-mail was for the window of {last_notified.isoformat()};"
        f" a reminder goes out for windows from {(last_notified + cooldown).isoformat()} while the line is crossed."
    )
    return replace(alert, body=f"{note}\n\n{alert.body}")


@dataclass(frozen=True, slots=True)
class Recovery:
    """What a window's recovery message quotes: the window's judgements and its links."""

    judgements: Sequence[Judgement]
    links: Links


def message_for(
    step: Due, *, crossed: Mapping[str, Alert], cooldown: timedelta, recovery: Recovery | None = None
) -> Alert:
    """The message of a kind the ledger found due: the crossing's alert (held back inside the cool-down), or
    the recovery. ``crossed``: the window's alerts by kind."""
    if step.action is Action.NOTIFY:
        return crossed[step.kind]
    if step.action is Action.SUPPRESS:
        assert step.episode.last_notified is not None
        return held_back(crossed[step.kind], last_notified=step.episode.last_notified, cooldown=cooldown)
    assert step.action is Action.RECOVER
    assert recovery is not None
    return recovery_alert(AlertKind(step.kind), recovery.judgements, since=step.episode.started, links=recovery.links)
