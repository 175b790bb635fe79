"""The live promotion check the monitor runs after storing its windows: judge the challenger the registry
names on the stored windows, apply a final decision to the aliases and record it.

Any challenger is judged the same way, whether the retraining flow set its alias or someone did by hand;
the decision finishes the ``challenging`` row of its retraining, or becomes a row of its own
(:func:`batch_monitor.retraining.ledger.record_alias_decision`). Rows left ``challenging`` by a challenger
whose alias moved on are closed first: from the decision tags on their version when a check was interrupted
after deciding, else as ``superseded``. Without a Prefect import, so a caller waiting on the monitor can ask it too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from batch_monitor.retraining import ledger
from batch_monitor.retraining.data import live_windows
from batch_monitor.retraining.ledger import RetrainingRecord, RunStatus
from batch_monitor.retraining.live_promotion import LiveDecision, LiveVerdict, decide_live_promotion
from batch_monitor.retraining.live_registry import (
    DECISION_TAG,
    REASON_TAG,
    Aliases,
    apply_decision,
    current_aliases,
    gate_failures,
    recorded_decision,
)
from churn_common.database import get_engine
from churn_common.mlflow_credentials import mlflow_errors_redacted
from churn_common.registry import configure_mlflow
from churn_common.settings import Settings, get_settings
from training import Gate

if TYPE_CHECKING:  # imported where it is used: `import mlflow` costs about a second
    from mlflow import MlflowClient

STATUS_OF_VERDICT = {LiveVerdict.PROMOTE: RunStatus.PROMOTED, LiveVerdict.RETIRE: RunStatus.RETIRED}
FINAL_STATUSES = frozenset(STATUS_OF_VERDICT.values())


@dataclass(frozen=True, slots=True)
class LiveCheck:
    """``decision``: on the challenger named now (``None`` without one); ``record``: the row a final decision
    finished or wrote; ``closed``: rows of earlier challengers closed by this check."""

    decision: LiveDecision | None
    record: RetrainingRecord | None = None
    closed: list[RetrainingRecord] = field(default_factory=list)


def judge_challenger(database_url: str) -> LiveCheck | None:
    """``None`` when live promotion is off (``PROMOTION_LIVE_WINDOWS=0``): nothing is read then."""
    settings = get_settings()
    if settings.promotion_live_windows == 0:
        return None
    from mlflow import MlflowClient

    with mlflow_errors_redacted():
        configure_mlflow(settings)
        return _judge(get_engine(database_url), MlflowClient(), settings=settings)


def _judge(engine: Engine, client: MlflowClient, *, settings: Settings) -> LiveCheck:
    aliases = current_aliases(client, settings=settings)
    closed = _close_stale(engine, client, aliases=aliases, settings=settings)
    challenger = aliases.challenger
    if challenger is None or challenger == aliases.serving:  # parked: no challenger on trial
        return LiveCheck(None, closed=closed)
    gate = Gate.from_settings(settings)
    decision = decide_live_promotion(
        live_windows(engine, serving_version=aliases.serving, challenger_version=challenger),
        serving_version=aliases.serving,
        challenger_version=challenger,
        required=settings.promotion_live_windows,
        gate_failures=gate_failures(client, model_name=settings.model_name, version=challenger, gate=gate),
    )
    if not decision.final:
        return LiveCheck(decision, closed=closed)
    status = STATUS_OF_VERDICT[decision.verdict]
    apply_decision(client, decision, status=str(status), settings=settings)
    return LiveCheck(decision, _record(engine, decision, status=status, settings=settings), closed)


def _record(
    engine: Engine, decision: LiveDecision, *, status: RunStatus, settings: Settings
) -> RetrainingRecord | None:
    figures = {
        "live_first_window_start": decision.windows[0].window.start,
        "live_last_window_end": decision.windows[-1].window.end,
        "live_serving_f1": decision.serving_f1,
        "live_challenger_f1": decision.challenger_f1,
    }
    runs = [
        r
        for r in ledger.open_challenges(engine, model_name=settings.model_name)
        if r.challenger_version == decision.challenger_version
    ]
    if runs:  # one at most: every retraining registers a version of its own
        return ledger.finish(engine, runs[-1].id, status=status, reason=decision.reason, **figures)
    return ledger.record_alias_decision(
        engine,
        model_name=settings.model_name,
        serving_version=decision.serving_version,
        challenger_version=decision.challenger_version,
        first_window_start=figures["live_first_window_start"],
        last_window_end=figures["live_last_window_end"],
        n_windows=len(decision.windows),
        status=status,
        reason=decision.reason,
        **figures,
    )


def _close_stale(
    engine: Engine, client: MlflowClient, *, aliases: Aliases, settings: Settings
) -> list[RetrainingRecord]:
    """Rows still ``challenging`` whose version the challenger alias no longer names (or that serves now)."""
    closed = []
    for run in ledger.open_challenges(engine, model_name=settings.model_name):
        version = run.challenger_version
        if version is None or (version == aliases.challenger and version != aliases.serving):
            continue
        tags = recorded_decision(client, model_name=settings.model_name, version=version)
        decided = tags.get(DECISION_TAG)
        if decided in FINAL_STATUSES:
            status, reason = RunStatus(decided), tags.get(REASON_TAG, "")
        else:
            status, reason = RunStatus.SUPERSEDED, _superseded_because(version, aliases=aliases, settings=settings)
        closed.append(ledger.finish(engine, run.id, status=status, reason=reason))
    return closed


def _superseded_because(version: str, *, aliases: Aliases, settings: Settings) -> str:
    if version == aliases.serving:
        return f"alias {settings.model_alias} moved to v{version} before a live decision"
    if aliases.challenger is None:
        return f"alias {settings.challenger_alias} removed before a live decision"
    if aliases.challenger == aliases.serving:
        return f"alias {settings.challenger_alias} parked on the serving v{aliases.serving} before a live decision"
    return f"alias {settings.challenger_alias} moved to v{aliases.challenger} before a live decision"
