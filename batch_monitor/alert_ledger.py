"""The ``alerts`` table as the ledger: every crossing, held-back crossing and recovery is a row, recorded first,
then the e-mailed ones published once to the SNS topic.

A row per window and kind. Recording before publishing means a crash between the two leaves an unsent row (no
message id) that the next run publishes (at least once, never lost), and a row with a message id is never
published again (a re-run or a second replica sends nothing). ``sent_at`` holds the recording time until the
publish time replaces it. ``status`` says what the row is: ``sent`` (e-mailed), ``suppressed`` (a crossing
inside an episode's cool-down, recorded for the dashboard only) or ``recovery`` (e-mailed: the episode ended).
The episode a kind is in is read back from the ledger itself, so it survives restarts with nothing else stored.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from sqlalchemy import Connection, Engine, case, func, select, update
from sqlalchemy.exc import IntegrityError

from batch_monitor.alerts import Alert, AlertKind, held_back
from batch_monitor.episodes import QUIET, Action, Episode, Verdict, next_action
from batch_monitor.windows import Window, as_utc
from churn_common.aws import alert_topic_arn, client
from churn_common.database import alerts


class AlertStatus(StrEnum):
    SENT = "sent"
    SUPPRESSED = "suppressed"
    RECOVERY = "recovery"


E_MAILED: tuple[AlertStatus, ...] = (AlertStatus.SENT, AlertStatus.RECOVERY)


@dataclass(frozen=True, slots=True)
class RecordedAlert:
    kind: str
    window_start: datetime
    status: AlertStatus
    subject: str


@dataclass(frozen=True, slots=True)
class SentAlert:
    kind: str
    window_start: datetime
    subject: str
    message_id: str


Recovery = Callable[[AlertKind, datetime | None], Alert]


@dataclass(frozen=True, slots=True)
class _Plan:
    """What one window (or one detector run) brings to the ledger."""

    crossed: Mapping[AlertKind, Alert]
    recovery: Recovery | None
    cooldown: timedelta


def _row(alert: Alert, status: AlertStatus, recorded_at: datetime) -> dict[str, object]:
    return {
        "window_start": alert.window.start,
        "window_end": alert.window.end,
        "kind": str(alert.kind),
        "subject": alert.subject,
        "message": alert.body,
        "message_id": None,
        "sent_at": recorded_at,
        "status": str(status),
    }


def record_alerts(
    engine: Engine,
    candidates: Sequence[Alert],
    *,
    now: datetime | None = None,
    status: AlertStatus = AlertStatus.SENT,
) -> int:
    """Insert each alert unless its window and kind are already recorded; returns how many are new."""
    recorded_at = now or datetime.now(tz=UTC)
    new = 0
    for alert in candidates:
        try:
            with engine.begin() as connection:
                connection.execute(alerts.insert(), _row(alert, status, recorded_at))
            new += 1
        except IntegrityError:
            continue
    return new


def episode_before(connection: Connection, kind: AlertKind, *, before: datetime) -> Episode:
    """The kind's episode as the ledger rows of earlier windows leave it."""
    of_kind = (alerts.c.kind == str(kind), alerts.c.window_start < before)
    last = connection.execute(
        select(alerts.c.status).where(*of_kind).order_by(alerts.c.window_start.desc()).limit(1)
    ).scalar_one_or_none()
    if last is None or last == AlertStatus.RECOVERY:
        return QUIET
    recovered = connection.execute(
        select(func.max(alerts.c.window_start)).where(*of_kind, alerts.c.status == str(AlertStatus.RECOVERY))
    ).scalar_one_or_none()
    in_episode = of_kind if recovered is None else (*of_kind, alerts.c.window_start > recovered)
    started, notified = connection.execute(
        select(
            func.min(alerts.c.window_start),
            func.max(case((alerts.c.status == str(AlertStatus.SENT), alerts.c.window_start))),
        ).where(*in_episode)
    ).one()
    return Episode(
        active=True,
        last_notified=None if notified is None else as_utc(notified),
        started=None if started is None else as_utc(started),
    )


def _notify(kind: AlertKind, _episode: Episode, plan: _Plan) -> tuple[AlertStatus, Alert]:
    return AlertStatus.SENT, plan.crossed[kind]


def _suppress(kind: AlertKind, episode: Episode, plan: _Plan) -> tuple[AlertStatus, Alert]:
    assert episode.last_notified is not None
    return AlertStatus.SUPPRESSED, held_back(
        plan.crossed[kind], last_notified=episode.last_notified, cooldown=plan.cooldown
    )


def _recover(kind: AlertKind, episode: Episode, plan: _Plan) -> tuple[AlertStatus, Alert]:
    assert plan.recovery is not None
    return AlertStatus.RECOVERY, plan.recovery(kind, episode.started)


_ROWS_BY_ACTION: Mapping[Action, Callable[[AlertKind, Episode, _Plan], tuple[AlertStatus, Alert]] | None] = {
    Action.NOTIFY: _notify,
    Action.SUPPRESS: _suppress,
    Action.RECOVER: _recover,
    Action.NOTHING: None,
}


def _record_decisions(
    connection: Connection,
    *,
    start: datetime,
    verdicts: Mapping[AlertKind, Verdict],
    plan: _Plan,
    recorded_at: datetime,
) -> list[RecordedAlert]:
    taken = set(
        connection.execute(
            select(alerts.c.kind).where(alerts.c.window_start == start, alerts.c.kind.in_([str(k) for k in verdicts]))
        ).scalars()
    )
    recorded = []
    for kind, verdict in verdicts.items():
        if str(kind) in taken:
            continue
        episode = episode_before(connection, kind, before=start)
        build = _ROWS_BY_ACTION[next_action(episode, verdict, at=start, cooldown=plan.cooldown)]
        if build is None:
            continue
        status, alert = build(kind, episode, plan)
        connection.execute(alerts.insert(), _row(alert, status, recorded_at))
        recorded.append(RecordedAlert(str(kind), alert.window.start, status, alert.subject))
    return recorded


def record_window_alerts(
    engine: Engine,
    *,
    window: Window,
    verdicts: Mapping[AlertKind, Verdict],
    crossed: Sequence[Alert],
    recovery: Recovery,
    cooldown: timedelta,
    now: datetime | None = None,
) -> list[RecordedAlert]:
    """One window's verdicts through each kind's episode, in one transaction; a kind already recorded for the
    window (a re-run) is left as it is."""
    plan = _Plan({a.kind: a for a in crossed}, recovery, cooldown)
    with engine.begin() as connection:
        return _record_decisions(
            connection,
            start=window.start,
            verdicts=verdicts,
            plan=plan,
            recorded_at=now or datetime.now(tz=UTC),
        )


def record_event_alerts(
    connection: Connection, events: Sequence[Alert], *, cooldown: timedelta, now: datetime | None = None
) -> list[RecordedAlert]:
    """Alerts about moments (a detected shift) in the caller's transaction: e-mailed unless one of the same
    kind was within the cool-down; events never recover."""
    recorded: list[RecordedAlert] = []
    for event in sorted(events, key=lambda e: e.window.start):
        recorded.extend(
            _record_decisions(
                connection,
                start=event.window.start,
                verdicts={event.kind: Verdict.CROSSED},
                plan=_Plan({event.kind: event}, None, cooldown),
                recorded_at=now or datetime.now(tz=UTC),
            )
        )
    return recorded


Publish = Callable[[str, str], str]


def publish_to_sns(subject: str, message: str) -> str:
    """The topic is resolved only when there is something to send (it may take an STS call)."""
    return str(client("sns").publish(TopicArn=alert_topic_arn(), Subject=subject, Message=message)["MessageId"])


def publish_unsent(engine: Engine, *, publish: Publish = publish_to_sns) -> list[SentAlert]:
    """Publish every recorded e-mail without a message id (this run's and any a crash left behind)."""
    with engine.connect() as connection:
        unsent = connection.execute(
            select(alerts.c.id, alerts.c.kind, alerts.c.window_start, alerts.c.subject, alerts.c.message)
            .where(alerts.c.message_id.is_(None), alerts.c.status.in_([str(s) for s in E_MAILED]))
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
