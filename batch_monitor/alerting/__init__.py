"""Alerting: each window kind judged once (:mod:`.rules`), its episode and cool-down (:mod:`.episodes`), the
e-mails (:mod:`.messages`), the ``alerts`` table as the ledger (:mod:`.ledger`) and SNS (:mod:`.publishing`).

The ledger builds no message: it says what is due, the caller builds the messages and the ledger records them.
"""

from batch_monitor.alerting.ledger import RecordedAlert
from batch_monitor.alerting.messages import Alert, Links, dashboard_link, dashboard_url
from batch_monitor.alerting.publishing import SentAlert, publish_unsent
from batch_monitor.alerting.rules import AlertKind, Judgement, judge

__all__ = [
    "Alert",
    "AlertKind",
    "Judgement",
    "Links",
    "RecordedAlert",
    "SentAlert",
    "dashboard_link",
    "dashboard_url",
    "judge",
    "publish_unsent",
]
