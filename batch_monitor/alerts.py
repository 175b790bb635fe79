"""Alert decisions (pure) and their delivery: recorded first, then published once to the SNS topic.

The ``alerts`` table is the ledger: a row per window and kind. Recording before publishing means a crash
between the two leaves an unsent row (no message id) that the next run publishes (at least once, never
lost), and a row with a message id is never published again (a re-run or a second replica sends nothing).
``sent_at`` holds the recording time until the publish time replaces it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import Engine, select, update
from sqlalchemy.exc import IntegrityError

from batch_monitor.evaluation import EvaluationStatus, WindowEvaluation
from batch_monitor.windows import Window, as_utc
from churn_common.aws import alert_topic_arn, client
from churn_common.database import alerts
from churn_common.settings import Settings

SUBJECT_MAX_CHARS = 100
SUBJECT_PREFIX = "[churn-model]"


class AlertKind(StrEnum):
    DATA_DRIFT = "data_drift"
    QUALITY = "quality"


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


def decide_alerts(evaluation: WindowEvaluation, thresholds: Thresholds, *, report_uri: str | None) -> list[Alert]:
    """At most one alert per kind: dataset drift beyond the share, or any quality metric below its minimum."""
    if evaluation.status is not EvaluationStatus.EVALUATED:
        return []
    return [
        alert for decide in _DECISIONS.values() if (alert := decide(evaluation, thresholds, report_uri)) is not None
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
        subject = alert_subject(f"{_KIND_TITLES[kind]} for {len(group)} model versions", window)
        merged.append(Alert(kind, window, subject, "\n\n".join(a.body for a in group)))
    return merged


def _drift_alert(evaluation: WindowEvaluation, thresholds: Thresholds, report_uri: str | None) -> Alert | None:
    share = evaluation.drift_share
    if share is None or share <= thresholds.drift_share:
        return None
    drifted = evaluation.drifted_columns
    subject = alert_subject(
        f"Data drift in {len(drifted)}/{len(evaluation.columns)} columns (v{evaluation.model_version})",
        evaluation.window,
    )
    lines = [
        *_header(evaluation),
        f"Drifted columns: {len(drifted)} of {len(evaluation.columns)}"
        f" (share {share:.2f} > {thresholds.drift_share:.2f})",
        *(f"  - {c.column}: {c.method} {c.score:.3f} (threshold {c.threshold:g})" for c in drifted),
    ]
    if evaluation.prediction_drift is not None:
        p = evaluation.prediction_drift
        state = "drifted" if p.drifted else "not drifted"
        lines.append(f"Churn probability: {p.method} {p.score:.3f} (threshold {p.threshold:g}, {state})")
    lines.extend(_quality_lines(evaluation, thresholds))
    lines.append(f"Report: {report_uri or 'not stored'}")
    return Alert(AlertKind.DATA_DRIFT, evaluation.window, subject, "\n".join(lines))


def _quality_alert(evaluation: WindowEvaluation, thresholds: Thresholds, report_uri: str | None) -> Alert | None:
    below = {name: value for name, value in evaluation.quality.items() if value < thresholds.minimum(name)}
    if not below:
        return None
    names = ", ".join(below)
    subject = alert_subject(f"Low quality: {names} (v{evaluation.model_version})", evaluation.window)
    lines = [
        *_header(evaluation),
        f"Metrics below their minimum: {names}",
        *_quality_lines(evaluation, thresholds),
        f"Report: {report_uri or 'not stored'}",
    ]
    return Alert(AlertKind.QUALITY, evaluation.window, subject, "\n".join(lines))


def _header(evaluation: WindowEvaluation) -> list[str]:
    window = evaluation.window
    return [
        f"Window: {window.start.isoformat()} to {window.end.isoformat()} (UTC)",
        f"Model version: {evaluation.model_version}",
        f"Rows: {evaluation.n_rows} ({evaluation.n_labelled} labelled)",
        *([f"Drift from a uniform sample of {evaluation.n_drift_rows} rows"] if evaluation.drift_sampled else []),
    ]


def _quality_lines(evaluation: WindowEvaluation, thresholds: Thresholds) -> list[str]:
    quality = evaluation.quality
    if not quality:
        return ["Quality: not computed (too few labelled rows or a single class)"]
    lines = []
    for name, value in quality.items():
        minimum = thresholds.minimum(name)
        lines.append(f"  {name}: {value:.3f} (minimum {minimum:.2f}){'  BELOW' if value < minimum else ''}")
    return lines


def alert_subject(what: str, window: Window) -> str:
    """SNS subjects must be ASCII, single-line, at most 100 characters: the window is kept, ``what`` shortened."""
    clock = "%H:%M" if window.start.second == window.end.second == 0 else "%H:%M:%S"
    end_format = clock if window.end.date() == window.start.date() else f"%Y-%m-%d {clock}"
    when = f" | window {window.start.strftime(f'%Y-%m-%d {clock}')}-{window.end.strftime(end_format)} UTC"
    room = SUBJECT_MAX_CHARS - len(SUBJECT_PREFIX) - 1 - len(when)
    what = " ".join(what.encode("ascii", "replace").decode().split())
    if len(what) > room:
        what = what[: room - 3] + "..."
    return f"{SUBJECT_PREFIX} {what}{when}"


_DECISIONS: Mapping[AlertKind, Callable[[WindowEvaluation, Thresholds, str | None], Alert | None]] = {
    AlertKind.DATA_DRIFT: _drift_alert,
    AlertKind.QUALITY: _quality_alert,
}
_KIND_TITLES: Mapping[AlertKind, str] = {
    AlertKind.DATA_DRIFT: "Data drift",
    AlertKind.QUALITY: "Low quality",
}


# --- delivery -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SentAlert:
    kind: str
    window_start: datetime
    subject: str
    message_id: str


def record_alerts(engine: Engine, candidates: Sequence[Alert], *, now: datetime | None = None) -> int:
    """Insert each alert unless its window and kind are already recorded; returns how many are new."""
    recorded_at = now or datetime.now(tz=UTC)
    new = 0
    for alert in candidates:
        row = {
            "window_start": alert.window.start,
            "window_end": alert.window.end,
            "kind": str(alert.kind),
            "subject": alert.subject,
            "message": alert.body,
            "message_id": None,
            "sent_at": recorded_at,
        }
        try:
            with engine.begin() as connection:
                connection.execute(alerts.insert(), row)
            new += 1
        except IntegrityError:
            continue
    return new


Publish = Callable[[str, str], str]


def publish_to_sns(subject: str, message: str) -> str:
    """The topic is resolved only when there is something to send (it may take an STS call)."""
    return str(client("sns").publish(TopicArn=alert_topic_arn(), Subject=subject, Message=message)["MessageId"])


def publish_unsent(engine: Engine, *, publish: Publish = publish_to_sns) -> list[SentAlert]:
    """Publish every recorded alert without a message id (this run's and any a crash left behind)."""
    with engine.connect() as connection:
        unsent = connection.execute(
            select(alerts.c.id, alerts.c.kind, alerts.c.window_start, alerts.c.subject, alerts.c.message)
            .where(alerts.c.message_id.is_(None))
            .order_by(alerts.c.window_start, alerts.c.kind)
        ).all()
    sent = []
    for row in unsent:
        message_id = publish(row.subject, row.message)
        with engine.begin() as connection:
            connection.execute(
                update(alerts).where(alerts.c.id == row.id).values(message_id=message_id, sent_at=datetime.now(tz=UTC))
            )
        sent.append(SentAlert(row.kind, as_utc(row.window_start), row.subject, message_id))
    return sent
