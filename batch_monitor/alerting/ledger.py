"""The ``alerts`` table as the ledger: every crossing, held-back crossing and recovery is a row, recorded first,
then the e-mailed ones published once to the SNS topic (:mod:`batch_monitor.alerting.publishing`).

A row per window and kind. Recording before publishing means a crash between the two leaves an unsent row (no
message id) that the next run publishes (at least once, never lost), and a row with a message id is never
published again (a re-run or a second replica sends nothing). ``sent_at`` holds the recording time until the
publish time replaces it. ``status`` says what the row is: ``sent`` (e-mailed), ``suppressed`` (a crossing
inside an episode's cool-down, recorded for the dashboard only) or ``recovery`` (e-mailed: the episode ended).
The episode a kind is in is read back from the ledger itself, so it survives restarts with nothing else stored.

The ledger builds no message: :func:`due` says, in the caller's transaction, which kinds of a window must be
recorded and why (the :class:`Due` carries the episode a message may quote); the caller builds the messages
and hands them to :func:`record` in the same transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Protocol

from sqlalchemy import Connection, Engine, case, func, select, update
from sqlalchemy.exc import IntegrityError

from batch_monitor.alerting.episodes import QUIET, Action, Episode, Verdict, next_action
from batch_monitor.core import Window, as_utc
from churn_common.database import alerts


class AlertStatus(StrEnum):
    SENT = "sent"
    SUPPRESSED = "suppressed"
    RECOVERY = "recovery"


E_MAILED: tuple[AlertStatus, ...] = (AlertStatus.SENT, AlertStatus.RECOVERY)
_STATUS_OF: Mapping[Action, AlertStatus] = {
    Action.NOTIFY: AlertStatus.SENT,
    Action.SUPPRESS: AlertStatus.SUPPRESSED,
    Action.RECOVER: AlertStatus.RECOVERY,
}


class Message(Protocol):
    """What a ledger row holds of a message (:class:`batch_monitor.alerting.messages.Alert`)."""

    @property
    def kind(self) -> str: ...
    @property
    def window(self) -> Window: ...
    @property
    def subject(self) -> str: ...
    @property
    def body(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Due:
    """A kind of a window that must be recorded: what its episode does with the window's verdict."""

    kind: str
    action: Action
    episode: Episode

    @property
    def status(self) -> AlertStatus:
        return _STATUS_OF[self.action]


@dataclass(frozen=True, slots=True)
class RecordedAlert:
    kind: str
    window_start: datetime
    status: AlertStatus
    subject: str


@dataclass(frozen=True, slots=True)
class Unsent:
    id: int
    kind: str
    window_start: datetime
    subject: str
    message: str


def _row(message: Message, status: AlertStatus, recorded_at: datetime) -> dict[str, object]:
    return {
        "window_start": message.window.start,
        "window_end": message.window.end,
        "kind": str(message.kind),
        "subject": message.subject,
        "message": message.body,
        "message_id": None,
        "sent_at": recorded_at,
        "status": str(status),
    }


def record_alerts(
    engine: Engine,
    candidates: Sequence[Message],
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


def episode_before(connection: Connection, kind: str, *, before: datetime) -> Episode:
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


def due(connection: Connection, *, start: datetime, verdicts: Mapping[str, Verdict], cooldown: timedelta) -> list[Due]:
    """The kinds of the window starting at ``start`` to record, in the order of ``verdicts``: each verdict
    through its kind's episode; a kind already recorded for the window (a re-run) is left as it is."""
    taken = set(
        connection.execute(
            select(alerts.c.kind).where(alerts.c.window_start == start, alerts.c.kind.in_([str(k) for k in verdicts]))
        ).scalars()
    )
    steps = []
    for kind, verdict in verdicts.items():
        if str(kind) in taken:
            continue
        episode = episode_before(connection, kind, before=start)
        action = next_action(episode, verdict, at=start, cooldown=cooldown)
        if action is not Action.NOTHING:
            steps.append(Due(kind, action, episode))
    return steps


def record(
    connection: Connection, entries: Sequence[tuple[Due, Message]], *, now: datetime | None = None
) -> list[RecordedAlert]:
    """Insert each due kind's message with the status its action gives."""
    recorded_at = now or datetime.now(tz=UTC)
    recorded = []
    for step, message in entries:
        connection.execute(alerts.insert(), _row(message, step.status, recorded_at))
        recorded.append(RecordedAlert(str(message.kind), message.window.start, step.status, message.subject))
    return recorded


def unsent(engine: Engine) -> list[Unsent]:
    """Every recorded e-mail without a message id, oldest window first."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(alerts.c.id, alerts.c.kind, alerts.c.window_start, alerts.c.subject, alerts.c.message)
            .where(alerts.c.message_id.is_(None), alerts.c.status.in_([str(s) for s in E_MAILED]))
            .order_by(alerts.c.window_start, alerts.c.kind)
        ).all()
    return [Unsent(row.id, row.kind, as_utc(row.window_start), row.subject, row.message) for row in rows]


def mark_sent(engine: Engine, row_id: int, *, message_id: str, at: datetime) -> None:
    with engine.begin() as connection:
        connection.execute(update(alerts).where(alerts.c.id == row_id).values(message_id=message_id, sent_at=at))
