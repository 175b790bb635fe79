"""The ``batch-monitor`` Prefect flow: every closed window not yet evaluated, or re-opened, oldest first.

Runs the early-warning detector, evaluates each window per model version, publishes alerts, then applies
retention. Alerts are published from the ledger after the windows, so an alert recorded by a run that crashed
goes out with the next one. A window that grew after its evaluation is re-opened and evaluated again (the
ledger still records a kind once per window). A window whose evaluation fails stays pending and is retried
by later runs, up to the horizon of :func:`batch_monitor.windows.scan_start`; the others are still evaluated
and the run ends failed, so the failure is visible. Retention never deletes rows of an unevaluated window.

Design notes: docs/batch_monitor.md#the-monitor-flow-step-by-step
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel

from batch_monitor.alert_ledger import RecordedAlert, publish_unsent, record_window_alerts
from batch_monitor.alerts import (
    WINDOW_KINDS,
    Alert,
    AlertKind,
    Links,
    Thresholds,
    dashboard_url,
    decide_alerts,
    merge_alerts,
    recovery_alert,
    window_verdicts,
)
from batch_monitor.early_warning import run_detector
from batch_monitor.episodes import merge_verdicts
from batch_monitor.evaluation import WindowEvaluation
from batch_monitor.reference import load_reference
from batch_monitor.reports import add_evaluation_to_workspace, upload_report
from batch_monitor.retention import Pruned, prune, retention_cutoff
from batch_monitor.retraining.flow import retrain_if_due
from batch_monitor.store import store_evaluation
from batch_monitor.window_evaluation import evaluate_stored_window
from batch_monitor.windows import PendingWindow, Window, as_utc, closed_before, pending_windows, scan_start
from churn_common.aws import client
from churn_common.database import get_engine
from churn_common.settings import get_settings

FLOW_NAME = "batch-monitor"


class WindowSummary(BaseModel):
    window_start: datetime
    window_end: datetime
    model_version: str
    status: str
    n_rows: int
    n_drift_rows: int | None
    drift_share: float | None
    dataset_drift: bool | None
    drifted_columns: list[str]
    prediction_drift_score: float | None
    f1: float | None
    precision: float | None
    recall: float | None
    accuracy: float | None
    estimated_f1: float | None = None
    estimated_precision: float | None = None
    estimated_recall: float | None = None
    estimated_accuracy: float | None = None
    estimated_roc_auc: float | None = None
    report_uri: str | None
    alerts: list[str]
    # Re-opened windows: the records the evaluation this one replaced had counted.
    previous_n_rows: int | None = None


class SentAlertSummary(BaseModel):
    kind: str
    window_start: datetime
    subject: str
    message_id: str


class RecordedAlertSummary(BaseModel):
    """A ledger row this run wrote: ``sent`` and ``recovery`` are e-mailed, ``suppressed`` only recorded."""

    kind: str
    window_start: datetime
    status: str
    subject: str


class EarlyWarningSummary(BaseModel):
    model_version: str
    direction: str
    before: float
    after: float
    started_at: datetime
    detected_at: datetime


class DetectorSummary(BaseModel):
    consumed: int
    early_warnings: list[EarlyWarningSummary]
    recorded_alerts: list[RecordedAlertSummary]


class EvaluatedWindow(BaseModel):
    versions: list[WindowSummary]
    recorded_alerts: list[RecordedAlertSummary]


class MonitorSummary(BaseModel):
    windows: list[WindowSummary]
    alerts_sent: list[SentAlertSummary]
    failed_windows: list[str]
    recorded_alerts: list[RecordedAlertSummary] = []
    detector: DetectorSummary | None = None
    pruned: Pruned | None = None


class WindowsFailedError(RuntimeError):
    """Some windows could not be evaluated; they stay pending for the next run."""


class DetectorFailedError(RuntimeError):
    """The early-warning detector failed; its state is as the last completed page left it."""


class PruneFailedError(RuntimeError):
    """Deleting rows past the retention period failed; the next run deletes what is left."""


@dataclass(frozen=True, slots=True)
class MonitorConfig:
    database_url: str
    model_name: str
    bucket: str
    reports_prefix: str
    min_rows: int
    thresholds: Thresholds
    lateness_seconds: float
    cooldown_seconds: float
    grafana_url: str


def _summary(
    evaluation: WindowEvaluation, *, report_uri: str | None, alerts: list[Alert], previous_n_rows: int | None
) -> WindowSummary:
    prediction = evaluation.prediction_drift
    return WindowSummary(
        window_start=evaluation.window.start,
        window_end=evaluation.window.end,
        model_version=evaluation.model_version,
        status=str(evaluation.status),
        n_rows=evaluation.n_rows,
        n_drift_rows=evaluation.n_drift_rows,
        drift_share=evaluation.drift_share,
        dataset_drift=evaluation.dataset_drift,
        drifted_columns=[c.column for c in evaluation.drifted_columns],
        prediction_drift_score=None if prediction is None else prediction.score,
        f1=evaluation.f1,
        precision=evaluation.precision,
        recall=evaluation.recall,
        accuracy=evaluation.accuracy,
        estimated_f1=evaluation.estimated_f1,
        estimated_precision=evaluation.estimated_precision,
        estimated_recall=evaluation.estimated_recall,
        estimated_accuracy=evaluation.estimated_accuracy,
        estimated_roc_auc=evaluation.estimated_roc_auc,
        report_uri=report_uri,
        alerts=[str(a.kind) for a in alerts],
        previous_n_rows=previous_n_rows,
    )


def _recorded(alerts: list[RecordedAlert]) -> list[RecordedAlertSummary]:
    return [
        RecordedAlertSummary(kind=a.kind, window_start=a.window_start, status=str(a.status), subject=a.subject)
        for a in alerts
    ]


@task(name="detect-shifts", cache_policy=NO_CACHE)
def detect_shifts(config: MonitorConfig, now: datetime) -> DetectorSummary:
    """Page-Hinkley over every prediction scored up to ``now`` less the lateness, closed window or not."""
    run = run_detector(
        get_engine(config.database_url),
        model_name=config.model_name,
        until=now - timedelta(seconds=config.lateness_seconds),
        cooldown=timedelta(seconds=config.cooldown_seconds),
        grafana_url=config.grafana_url,
    )
    warnings = [
        EarlyWarningSummary(
            model_version=s.model_version,
            direction=str(s.shift.direction),
            before=s.shift.before,
            after=s.shift.after,
            started_at=datetime.fromtimestamp(s.shift.started_at, tz=UTC),
            detected_at=datetime.fromtimestamp(s.detected_at, tz=UTC),
        )
        for s in run.shifts
    ]
    get_run_logger().info("detector consumed %d prediction(s), %d shift(s)", run.consumed, len(warnings))
    return DetectorSummary(consumed=run.consumed, early_warnings=warnings, recorded_alerts=_recorded(run.recorded))


@task(name="evaluate-window", cache_policy=NO_CACHE, task_run_name="evaluate-{pending.window.label}")
def evaluate_pending_window(pending: PendingWindow, config: MonitorConfig) -> EvaluatedWindow:
    """All model versions seen in one window; alerts are recorded before the results, see the module doc."""
    engine = get_engine(config.database_url)
    evaluated_at = datetime.now(tz=UTC)
    dashboard = dashboard_url(config.grafana_url, start=pending.window.start, end=pending.window.end)
    results: list[tuple[WindowEvaluation, str | None, list[Alert]]] = []
    for version in pending.versions:
        evaluation = evaluate_stored_window(
            engine,
            window=pending.window,
            model_name=config.model_name,
            model_version=version,
            reference=partial(load_reference, config.model_name, version),
            min_rows=config.min_rows,
            drift_share_threshold=config.thresholds.drift_share,
        )
        report_uri = None
        if evaluation.html is not None:
            report_uri = upload_report(
                evaluation.html,
                s3=client("s3"),
                bucket=config.bucket,
                prefix=config.reports_prefix,
                window=pending.window,
                model_version=version,
            )
        add_evaluation_to_workspace(evaluation)
        decided = decide_alerts(evaluation, config.thresholds, report_uri=report_uri, dashboard_url=dashboard)
        results.append((evaluation, report_uri, decided))
    verdicts = [window_verdicts(e, config.thresholds) for e, _, _ in results]
    evaluations = [e for e, _, _ in results]

    def recovery(kind: AlertKind, since: datetime | None) -> Alert:
        report = next((uri for _, uri, _ in results if uri is not None), None)
        links = Links(report_uri=report, dashboard_url=dashboard)
        return recovery_alert(kind, evaluations, config.thresholds, since=since, links=links)

    recorded = record_window_alerts(
        engine,
        window=pending.window,
        verdicts={kind: merge_verdicts([v[kind] for v in verdicts]) for kind in WINDOW_KINDS},
        crossed=merge_alerts([a for _, _, decided in results for a in decided]),
        recovery=recovery,
        cooldown=timedelta(seconds=config.cooldown_seconds),
        now=evaluated_at,
    )
    for evaluation, report_uri, _ in results:
        store_evaluation(engine, evaluation, report_uri=report_uri, evaluated_at=evaluated_at)
    summaries = [
        _summary(
            e,
            report_uri=uri,
            alerts=decided,
            previous_n_rows=pending.evaluated_rows_by_version.get(e.model_version),
        )
        for e, uri, decided in results
    ]
    for s in summaries:
        get_run_logger().info(
            "window %s v%s: %s, %d rows%s, drift share %s, alerts %s",
            s.window_start.isoformat(),
            s.model_version,
            s.status,
            s.n_rows,
            "" if s.previous_n_rows is None else f" (re-opened: {s.previous_n_rows} before)",
            s.drift_share,
            s.alerts or "none",
        )
    return EvaluatedWindow(versions=summaries, recorded_alerts=_recorded(recorded))


@task(name="prune-history", cache_policy=NO_CACHE)
def prune_history(database_url: str, cutoff: datetime) -> Pruned:
    """Predictions and rejected records before ``cutoff`` (see :mod:`batch_monitor.retention`)."""
    pruned = prune(get_engine(database_url), cutoff=cutoff)
    get_run_logger().info(
        "deleted %d prediction(s) and %d rejected record(s) before %s",
        pruned.predictions,
        pruned.rejected_records,
        cutoff.isoformat(),
    )
    return pruned


@task(name="publish-alerts", cache_policy=NO_CACHE)
def publish_alerts(database_url: str) -> list[SentAlertSummary]:
    sent = publish_unsent(get_engine(database_url))
    return [
        SentAlertSummary(kind=a.kind, window_start=a.window_start, subject=a.subject, message_id=a.message_id)
        for a in sent
    ]


@flow(name=FLOW_NAME)
def monitor_windows(
    now: datetime | None = None,
    window_seconds: int | None = None,
    lateness_seconds: float | None = None,
    min_rows: int | None = None,
) -> MonitorSummary:
    """Evaluate every pending window; the arguments override the settings (``now`` is for replays and tests)."""
    settings = get_settings()
    config = MonitorConfig(
        database_url=settings.resolved_database_url,
        model_name=settings.model_name,
        bucket=settings.bucket,
        reports_prefix=settings.reports_prefix,
        min_rows=min_rows or settings.window_min_rows,
        thresholds=Thresholds.from_settings(settings),
        lateness_seconds=settings.window_lateness_seconds if lateness_seconds is None else lateness_seconds,
        cooldown_seconds=settings.alert_cooldown_seconds,
        grafana_url=settings.grafana_url,
    )
    moment = as_utc(now) if now else datetime.now(tz=UTC)
    detection = detect_shifts(config, moment, return_state=True)
    detector = detection.result() if detection.is_completed() else None
    engine = get_engine(config.database_url)
    length = window_seconds or settings.window_seconds
    pending = pending_windows(
        engine,
        window_seconds=length,
        now=moment,
        lateness_seconds=config.lateness_seconds,
        model_name=config.model_name,
        since=scan_start(engine, retry_seconds=settings.window_retry_seconds),
    )
    logger = get_run_logger()
    logger.info("%d pending window(s), %d of them re-opened", len(pending), sum(p.reopened for p in pending))
    windows: list[WindowSummary] = []
    recorded = [] if detector is None else list(detector.recorded_alerts)
    failed: list[Window] = []
    for item in pending:
        state = evaluate_pending_window(item, config, return_state=True)
        if state.is_completed():
            result = state.result()
            windows.extend(result.versions)
            recorded.extend(result.recorded_alerts)
        else:
            failed.append(item.window)
    if windows:
        retrain_if_due(config.database_url)
    cutoff = retention_cutoff(
        now=moment,
        retention_days=settings.predictions_retention_days,
        keep_from=[
            closed_before(now=moment, window_seconds=length, lateness_seconds=config.lateness_seconds),
            *(window.start for window in failed),
        ],
    )
    pruning = None if cutoff is None else prune_history(config.database_url, cutoff, return_state=True)
    summary = MonitorSummary(
        windows=windows,
        alerts_sent=publish_alerts(config.database_url),
        failed_windows=[window.label for window in failed],
        recorded_alerts=recorded,
        detector=detector,
        pruned=pruning.result() if pruning is not None and pruning.is_completed() else None,
    )
    if failed:
        labels = ", ".join(window.label for window in failed)
        raise WindowsFailedError(f"{len(failed)} window(s) failed and stay pending: {labels}")
    if detector is None:
        raise DetectorFailedError("the early-warning detector failed; it resumes from its watermark next run")
    if pruning is not None and not pruning.is_completed():
        raise PruneFailedError("deleting rows past the retention period failed; the next run deletes the rest")
    return summary
