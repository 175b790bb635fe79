"""Whether a retraining is due now, decided from the stored windows, the ledger and the serving alias.

Kept apart from the flow so that a caller waiting on the monitor (the demo) asks the very question the
flow asks, without importing Prefect.
"""

from __future__ import annotations

from batch_monitor.retraining import ledger
from batch_monitor.retraining.challenger import serving_version
from batch_monitor.retraining.data import quality_history
from batch_monitor.retraining.decision import RetrainingDecision, RetrainingPolicy, Verdict, decide_retraining
from churn_common.database import get_engine
from churn_common.settings import get_settings


def due_retraining(database_url: str) -> RetrainingDecision:
    """The decision for the version serving now; windows an earlier retraining of it used do not count."""
    settings = get_settings()
    policy = RetrainingPolicy.from_settings(settings)
    if not policy.enabled:
        return RetrainingDecision(Verdict.DISABLED, "")
    engine = get_engine(database_url)
    version = serving_version(settings)
    since = ledger.used_until(engine, model_name=settings.model_name, serving_version=version)
    history = quality_history(engine, model_version=version, since=since)
    return decide_retraining(history, serving_version=version, policy=policy, used_until=since)
