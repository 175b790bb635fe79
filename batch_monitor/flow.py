"""The ``batch-monitor`` Prefect flow: every closed, not yet evaluated window, oldest first.

Per window and model version: read its predictions (a uniform sample of a large window, with exact counts),
compare them with that version's reference (Evidently), put the HTML report in S3, decide alerts, record
them, store the results. Alerts are published after the windows, from the ledger, so an alert recorded by a
run that crashed goes out with the next one.
A window whose evaluation fails stays pending (nothing is stored for it) and is retried by the next run;
the other windows are still evaluated, and the run ends failed so the failure is visible.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel

from batch_monitor.alerts import Alert, Thresholds, decide_alerts, merge_alerts, publish_unsent, record_alerts
from batch_monitor.evaluation import WindowEvaluation
from batch_monitor.reference import load_reference
from batch_monitor.reports import upload_report
from batch_monitor.store import store_evaluation
from batch_monitor.window_evaluation import evaluate_stored_window
from batch_monitor.windows import PendingWindow, as_utc, pending_windows
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
    report_uri: str | None
    alerts: list[str]


class SentAlertSummary(BaseModel):
    kind: str
    window_start: datetime
    subject: str
    message_id: str


class MonitorSummary(BaseModel):
    windows: list[WindowSummary]
    alerts_sent: list[SentAlertSummary]
    failed_windows: list[str]


class WindowsFailedError(RuntimeError):
    """Some windows could not be evaluated; they stay pending for the next run."""


@dataclass(frozen=True, slots=True)
class MonitorConfig:
    database_url: str
    model_name: str
    bucket: str
    reports_prefix: str
    min_rows: int
    thresholds: Thresholds


def _summary(evaluation: WindowEvaluation, *, report_uri: str | None, alerts: list[Alert]) -> WindowSummary:
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
        report_uri=report_uri,
        alerts=[str(a.kind) for a in alerts],
    )


@task(name="evaluate-window", cache_policy=NO_CACHE, task_run_name="evaluate-{pending.window.label}")
def evaluate_pending_window(pending: PendingWindow, config: MonitorConfig) -> list[WindowSummary]:
    """All model versions seen in one window; alerts are recorded before the results, see the module doc."""
    engine = get_engine(config.database_url)
    evaluated_at = datetime.now(tz=UTC)
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
        results.append((evaluation, report_uri, decide_alerts(evaluation, config.thresholds, report_uri=report_uri)))
    record_alerts(engine, merge_alerts([a for _, _, decided in results for a in decided]), now=evaluated_at)
    for evaluation, report_uri, _ in results:
        store_evaluation(engine, evaluation, report_uri=report_uri, evaluated_at=evaluated_at)
    summaries = [_summary(e, report_uri=uri, alerts=decided) for e, uri, decided in results]
    for s in summaries:
        get_run_logger().info(
            "window %s v%s: %s, %d rows, drift share %s, alerts %s",
            s.window_start.isoformat(),
            s.model_version,
            s.status,
            s.n_rows,
            s.drift_share,
            s.alerts or "none",
        )
    return summaries


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
    )
    pending = pending_windows(
        get_engine(config.database_url),
        window_seconds=window_seconds or settings.window_seconds,
        now=as_utc(now) if now else datetime.now(tz=UTC),
        lateness_seconds=settings.window_lateness_seconds if lateness_seconds is None else lateness_seconds,
        model_name=config.model_name,
    )
    logger = get_run_logger()
    logger.info("%d pending window(s)", len(pending))
    windows: list[WindowSummary] = []
    failed: list[str] = []
    for item in pending:
        state = evaluate_pending_window(item, config, return_state=True)
        if state.is_completed():
            windows.extend(state.result())
        else:
            failed.append(item.window.label)
    summary = MonitorSummary(windows=windows, alerts_sent=publish_alerts(config.database_url), failed_windows=failed)
    if failed:
        raise WindowsFailedError(f"{len(failed)} window(s) failed and stay pending: {', '.join(failed)}")
    return summary
