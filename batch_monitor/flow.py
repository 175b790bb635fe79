"""The ``batch-monitor`` Prefect flow: every closed window not yet evaluated, or re-opened, oldest first.

Runs the early-warning detector, ingests label files (:mod:`batch_monitor.labels`: windows whose records got
labels after their evaluation are re-opened), evaluates each window per model version, publishes alerts, then applies
retention. Alerts are published from the ledger after the windows, so an alert recorded by a run that crashed
goes out with the next one. A window that grew after its evaluation is re-opened and evaluated again (the
ledger still records a kind once per window). A window whose evaluation fails stays pending and is retried
by later runs, up to the horizon of :func:`batch_monitor.window_data.windows.scan_start`; the others are still evaluated
and the run ends failed, so the failure is visible. Retention never deletes rows of an unevaluated window.

Design notes: docs/batch_monitor.md#the-monitor-flow-step-by-step
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel
from sqlalchemy import Engine

from batch_monitor.alerting import (
    Alert,
    Judgement,
    Links,
    RecordedAlert,
    SentAlert,
    dashboard_link,
    judge,
    ledger,
    publish_unsent,
)
from batch_monitor.alerting.messages import Recovery, crossing_alerts, merge_alerts, message_for
from batch_monitor.alerting.rules import judged_kinds, window_verdicts
from batch_monitor.core import Thresholds, Window, WindowResult, as_utc
from batch_monitor.early_warning.detector import run_detector
from batch_monitor.evaluation.reference import load_reference
from batch_monitor.evaluation.stored_window import evaluate_stored_window
from batch_monitor.labels.ingest import LabelIngest, ingest_labels
from batch_monitor.reports.workspace import add_evaluation_to_workspace, project_dashboard_url, upload_report
from batch_monitor.retraining.flow import promote_if_won, retrain_if_due
from batch_monitor.window_data.retention import Pruned, prune, retention_cutoff
from batch_monitor.window_data.store import store_evaluation
from batch_monitor.window_data.windows import PendingWindow, closed_before, pending_windows, scan_start
from churn_common.aws import client
from churn_common.database import get_engine
from churn_common.errors import TransientError
from churn_common.settings import get_settings

FLOW_NAME = "batch-monitor"


@dataclass(frozen=True, slots=True, kw_only=True)
class WindowSummary(WindowResult):
    """A window's stored result and what the run saw beside it."""

    n_drift_rows: int | None = None
    drifted_columns: list[str] = field(default_factory=list)
    alerts: list[str] = field(default_factory=list)
    # Re-opened windows: the records the evaluation this one replaced had counted.
    previous_n_rows: int | None = None


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
    recorded_alerts: list[RecordedAlert]


class EvaluatedWindow(BaseModel):
    versions: list[WindowSummary]
    recorded_alerts: list[RecordedAlert]


class MonitorSummary(BaseModel):
    """``recorded_alerts``: the ledger rows this run wrote (``sent`` and ``recovery`` are e-mailed,
    ``suppressed`` only recorded)."""

    windows: list[WindowSummary]
    alerts_sent: list[SentAlert]
    failed_windows: list[str]
    recorded_alerts: list[RecordedAlert] = []
    detector: DetectorSummary | None = None
    pruned: Pruned | None = None
    labels: LabelIngest | None = None


class WindowsFailedError(TransientError, RuntimeError):
    """Some windows could not be evaluated; they stay pending for the next run."""


class DetectorFailedError(TransientError, RuntimeError):
    """The early-warning detector failed; its state is as the last completed page left it."""


class LabelsFailedError(TransientError, RuntimeError):
    """Ingesting label files failed; files not ingested are read again by the next run."""


class PruneFailedError(TransientError, RuntimeError):
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
    grafana_url: str | None
    # The dashboard alerts link without Grafana: the local Evidently UI's (None when Grafana is configured).
    evidently_dashboard_url: str | None = None
    min_label_coverage: float = 0.0
    labels_prefix: str = "data/labels/"
    retention_days: float = 0.0


def _summary(result: WindowResult, judgement: Judgement, *, previous_n_rows: int | None) -> WindowSummary:
    evaluation = judgement.evaluation
    return WindowSummary(
        **result.row(),
        n_drift_rows=evaluation.n_drift_rows,
        drifted_columns=[c.column for c in evaluation.drifted_columns],
        alerts=[str(kind) for kind in judgement.crossed],
        previous_n_rows=previous_n_rows,
    )


def _record_alerts(
    engine: Engine,
    *,
    window: Window,
    judged: list[tuple[Judgement, str | None]],
    dashboard: str | None,
    cooldown: timedelta,
    now: datetime,
) -> list[RecordedAlert]:
    """The window's verdicts (merged over its versions) through the ledger, each due kind's message built
    here, all in one transaction; a kind already recorded for the window (a re-run) is left as it is."""
    crossed = merge_alerts([a for judgement, uri in judged for a in crossing_alerts(judgement, Links(uri, dashboard))])
    judgements = [judgement for judgement, _ in judged]
    report = next((uri for _, uri in judged if uri is not None), None)
    recovery = Recovery(judgements, Links(report_uri=report, dashboard_url=dashboard))
    by_kind: dict[str, Alert] = {a.kind: a for a in crossed}
    with engine.begin() as connection:
        due = ledger.due(connection, start=window.start, verdicts=window_verdicts(judgements), cooldown=cooldown)
        entries = [(step, message_for(step, crossed=by_kind, cooldown=cooldown, recovery=recovery)) for step in due]
        return ledger.record(connection, entries, now=now)


@task(name="detect-shifts", cache_policy=NO_CACHE)
def detect_shifts(config: MonitorConfig, now: datetime) -> DetectorSummary:
    """Page-Hinkley over every prediction scored up to ``now`` less the lateness, closed window or not."""
    run = run_detector(
        get_engine(config.database_url),
        model_name=config.model_name,
        until=now - timedelta(seconds=config.lateness_seconds),
        cooldown=timedelta(seconds=config.cooldown_seconds),
        grafana_url=config.grafana_url,
        fallback_url=config.evidently_dashboard_url,
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
    return DetectorSummary(consumed=run.consumed, early_warnings=warnings, recorded_alerts=run.recorded)


@task(name="ingest-labels", cache_policy=NO_CACHE)
def ingest_new_labels(config: MonitorConfig, now: datetime, received_at: datetime) -> LabelIngest:
    """Label files not ingested yet, then the labels still waiting for their prediction (see
    :mod:`batch_monitor.labels`)."""
    ingest = ingest_labels(
        get_engine(config.database_url),
        client("s3"),
        bucket=config.bucket,
        prefix=config.labels_prefix,
        now=now,
        received_at=received_at,
        retention_days=config.retention_days,
    )
    logger = get_run_logger()
    for counts in ingest.files:
        logger.info(
            "labels %s (%s): %d row(s), %d joined, %d duplicate, %d unknown, %d too old, %d rejected",
            counts.key,
            counts.version,
            counts.rows,
            counts.joined,
            counts.duplicate,
            counts.unknown,
            counts.too_old,
            counts.rejected,
        )
    if ingest.skipped_keys:
        logger.warning("not label files (.csv, .csv.gz): %s", ", ".join(ingest.skipped_keys))
    return ingest


@task(name="evaluate-window", cache_policy=NO_CACHE, task_run_name="evaluate-{pending.window.label}")
def evaluate_pending_window(pending: PendingWindow, config: MonitorConfig) -> EvaluatedWindow:
    """All model versions seen in one window, each judged once; alerts are recorded before the results, see the
    module doc."""
    engine = get_engine(config.database_url)
    evaluated_at = datetime.now(tz=UTC)
    dashboard = dashboard_link(
        grafana_url=config.grafana_url,
        fallback_url=config.evidently_dashboard_url,
        start=pending.window.start,
        end=pending.window.end,
    )
    judged: list[tuple[Judgement, str | None]] = []
    for version in pending.versions:
        evaluation = evaluate_stored_window(
            engine,
            window=pending.window,
            model_name=config.model_name,
            model_version=version,
            reference=partial(load_reference, config.model_name, version),
            challenger_reference=partial(load_reference, config.model_name),
            min_rows=config.min_rows,
            min_label_coverage=config.min_label_coverage,
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
        judgement = judge(evaluation, config.thresholds)
        add_evaluation_to_workspace(evaluation, crossed=judged_kinds(judgement))
        judged.append((judgement, report_uri))
    recorded = _record_alerts(
        engine,
        window=pending.window,
        judged=judged,
        dashboard=dashboard,
        cooldown=timedelta(seconds=config.cooldown_seconds),
        now=evaluated_at,
    )
    summaries = []
    for judgement, report_uri in judged:
        evaluation = judgement.evaluation
        result = store_evaluation(engine, evaluation, report_uri=report_uri, evaluated_at=evaluated_at)
        previous = pending.evaluated_rows_by_version.get(evaluation.model_version)
        summaries.append(_summary(result, judgement, previous_n_rows=previous))
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
    return EvaluatedWindow(versions=summaries, recorded_alerts=recorded)


@task(name="prune-history", cache_policy=NO_CACHE)
def prune_history(database_url: str, cutoff: datetime) -> Pruned:
    """Predictions and rejected records before ``cutoff`` (see :mod:`batch_monitor.window_data.retention`)."""
    pruned = prune(get_engine(database_url), cutoff=cutoff)
    get_run_logger().info(
        "deleted %d prediction(s) and %d rejected record(s) before %s",
        pruned.predictions,
        pruned.rejected_records,
        cutoff.isoformat(),
    )
    return pruned


@task(name="publish-alerts", cache_policy=NO_CACHE)
def publish_alerts(database_url: str) -> list[SentAlert]:
    return publish_unsent(get_engine(database_url))


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
        evidently_dashboard_url=(
            project_dashboard_url(settings)
            if settings.evidently_workspace_enabled and not settings.grafana_url
            else None
        ),
        min_label_coverage=settings.min_label_coverage,
        labels_prefix=settings.labels_prefix,
        retention_days=settings.predictions_retention_days,
    )
    moment = as_utc(now) if now else datetime.now(tz=UTC)
    detection = detect_shifts(config, moment, return_state=True)
    detector = detection.result() if detection.is_completed() else None
    started = datetime.now(tz=UTC)
    labelling = ingest_new_labels(config, moment, started, return_state=True)
    labels = labelling.result() if labelling.is_completed() else None
    engine = get_engine(config.database_url)
    length = window_seconds or settings.window_seconds
    pending = pending_windows(
        engine,
        window_seconds=length,
        now=moment,
        lateness_seconds=config.lateness_seconds,
        model_name=config.model_name,
        since=scan_start(engine, retry_seconds=settings.window_retry_seconds),
        # Labels joined by this run, and by earlier runs whose re-evaluation failed (retried as long as windows).
        relabelled_since=started - timedelta(seconds=settings.window_retry_seconds),
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
        promote_if_won(config.database_url)
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
        labels=labels,
    )
    if failed:
        names = ", ".join(window.label for window in failed)
        raise WindowsFailedError(f"{len(failed)} window(s) failed and stay pending: {names}")
    if detector is None:
        raise DetectorFailedError("the early-warning detector failed; it resumes from its watermark next run")
    if labels is None:
        raise LabelsFailedError("ingesting label files failed; the next run reads the files not ingested")
    if pruning is not None and not pruning.is_completed():
        raise PruneFailedError("deleting rows past the retention period failed; the next run deletes the rest")
    return summary
