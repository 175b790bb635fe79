"""Publishing to the SNS topic: its limits on a message, and the e-mails the ledger holds unsent.

Each unsent e-mail is published once and its message id written back (:mod:`batch_monitor.alerting.ledger`),
so an e-mail recorded by a run that crashed goes out with the next run, and none goes out twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine

from batch_monitor.alerting.ledger import mark_sent, unsent
from churn_common.aws import alert_topic_arn, client

# SNS subjects must be ASCII, single-line, at most 100 characters.
SUBJECT_MAX_CHARS = 100

Publish = Callable[[str, str], str]


@dataclass(frozen=True, slots=True)
class SentAlert:
    kind: str
    window_start: datetime
    subject: str
    message_id: str


def fit_subject(prefix: str, what: str, when: str) -> str:
    """``prefix what when`` as SNS takes a subject: ``prefix`` and ``when`` are kept, ``what`` shortened."""
    room = SUBJECT_MAX_CHARS - len(prefix) - 1 - len(when)
    what = " ".join(what.encode("ascii", "replace").decode().split())
    if len(what) > room:
        what = what[: room - 3] + "..."
    return f"{prefix} {what}{when}"


def publish_to_sns(subject: str, message: str) -> str:
    """The topic is resolved only when there is something to send (it may take an STS call)."""
    return str(client("sns").publish(TopicArn=alert_topic_arn(), Subject=subject, Message=message)["MessageId"])


def publish_unsent(engine: Engine, *, publish: Publish = publish_to_sns) -> list[SentAlert]:
    """Publish every recorded e-mail without a message id (this run's and any a crash left behind)."""
    sent = []
    for row in unsent(engine):
        message_id = publish(row.subject, row.message)
        mark_sent(engine, row.id, message_id=message_id, at=datetime.now(tz=UTC))
        sent.append(SentAlert(row.kind, row.window_start, row.subject, message_id))
    return sent
