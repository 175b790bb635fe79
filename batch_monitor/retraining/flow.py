"""The ``retrain-model`` Prefect flow, and the check the monitor runs after storing its windows.

:func:`retrain_if_due` is cheap when retraining is off (it returns before touching MLflow). When the
decision says so, it runs the flow as a subflow of the monitor run: the windows are claimed in the
ledger first, then the challenger is trained, compared and registered. A failed retraining is recorded
(status ``failed``, with its error) and logged; it never fails the monitor run that triggered it.

:func:`promote_if_won` is the live promotion check (:mod:`batch_monitor.retraining.live_check`): it runs
after :func:`retrain_if_due` and likewise only logs its failures, the next run deciding again.
"""

from __future__ import annotations

from datetime import datetime

from prefect import flow, get_run_logger
from pydantic import BaseModel

from batch_monitor.core import Window
from batch_monitor.retraining import ledger
from batch_monitor.retraining.challenger import ChallengerResult, NotEnoughDataError, train_challenger
from batch_monitor.retraining.data import labelled_records
from batch_monitor.retraining.decision import RetrainingDecision, Verdict, WindowQuality
from batch_monitor.retraining.due import due_retraining
from batch_monitor.retraining.ledger import RunStatus
from batch_monitor.retraining.live_check import LiveCheck, judge_challenger
from churn_common.database import get_engine
from churn_common.settings import get_settings

RETRAIN_FLOW_NAME = "retrain-model"


class RetrainingOutcome(BaseModel):
    run_id: int | None
    status: str
    reason: str | None
    serving_version: str
    first_window_start: datetime
    last_window_end: datetime
    challenger_version: str | None = None
    challenger_f1: float | None = None
    serving_f1: float | None = None


def _outcome(record: ledger.RetrainingRecord) -> RetrainingOutcome:
    return RetrainingOutcome(
        run_id=record.id,
        status=record.status,
        reason=record.reason,
        serving_version=record.serving_version,
        first_window_start=record.first_window_start,
        last_window_end=record.last_window_end,
        challenger_version=record.challenger_version,
        challenger_f1=record.challenger_f1,
        serving_f1=record.serving_f1,
    )


def _status(result: ChallengerResult) -> RunStatus:
    if result.promoted:
        return RunStatus.PROMOTED
    return RunStatus.CHALLENGING if result.challenging else RunStatus.KEPT


@flow(name=RETRAIN_FLOW_NAME)
def retrain_model(
    serving_version: str, window_starts: list[datetime], window_ends: list[datetime]
) -> RetrainingOutcome:
    """Train a challenger on the labelled records of the given windows (of any version); promote it if it wins."""
    settings = get_settings()
    logger = get_run_logger()
    engine = get_engine(settings.resolved_database_url)
    windows = tuple(
        WindowQuality(Window(start, end), serving_version, {})
        for start, end in zip(window_starts, window_ends, strict=True)
    )
    decision = RetrainingDecision(Verdict.RETRAIN, serving_version, windows)
    run_id = ledger.claim(engine, decision, model_name=settings.model_name)
    if run_id is None:
        logger.info("windows up to %s were already retrained for; nothing to do", decision.last_window_end)
        return RetrainingOutcome(
            run_id=None,
            status="already_claimed",
            reason="these windows triggered a retraining before",
            serving_version=serving_version,
            first_window_start=decision.first_window_start,
            last_window_end=decision.last_window_end,
        )
    trigger = f"{decision.first_window_start.isoformat()}/{decision.last_window_end.isoformat()}"
    try:
        frame = labelled_records(
            engine, model_name=settings.model_name, start=decision.first_window_start, end=decision.last_window_end
        )
        result = train_challenger(frame, serving_version=serving_version, trigger=trigger, settings=settings)
    except NotEnoughDataError as exc:
        record = ledger.finish(engine, run_id, status=RunStatus.SKIPPED, reason=str(exc))
        logger.warning("retraining skipped: %s", exc)
        return _outcome(record)
    except Exception as exc:
        ledger.finish(engine, run_id, status=RunStatus.FAILED, reason=f"{type(exc).__name__}: {exc}")
        raise
    record = ledger.finish(
        engine,
        run_id,
        status=_status(result),
        reason=result.reason,
        n_train_rows=result.n_train_rows,
        n_holdout_rows=result.n_holdout_rows,
        challenger_version=result.challenger_version,
        challenger_f1=result.challenger_metrics["f1"],
        serving_f1=result.serving_metrics["f1"],
    )
    moved = {
        RunStatus.PROMOTED: f"{settings.model_alias} -> v{result.challenger_version}",
        RunStatus.CHALLENGING: f"{settings.challenger_alias} -> v{result.challenger_version}, serving alias unchanged",
    }
    logger.info(
        "challenger v%s: %s; %s",
        result.challenger_version,
        result.reason,
        moved.get(_status(result), "serving alias unchanged"),
    )
    return _outcome(record)


def retrain_if_due(database_url: str) -> RetrainingOutcome | None:
    """Run ``retrain-model`` as a subflow when the decision says so; the outcome, or ``None`` without one."""
    logger = get_run_logger()
    try:
        decision = due_retraining(database_url)
    except Exception:
        logger.warning("retraining decision failed; the next run decides again", exc_info=True)
        return None
    if decision.verdict is not Verdict.DISABLED:
        logger.info("retraining for v%s: %s", decision.serving_version, decision.verdict)
    if not decision.retrain:
        return None
    state = retrain_model(
        decision.serving_version,
        [w.window.start for w in decision.windows],
        [w.window.end for w in decision.windows],
        return_state=True,
    )
    if not state.is_completed():
        logger.warning("retraining failed (recorded in retraining_runs): %s", state.message)
        return None
    return state.result()


def promote_if_won(database_url: str) -> LiveCheck | None:
    """Judge the challenger on the stored live windows; the check, or ``None`` when off or failed."""
    logger = get_run_logger()
    try:
        check = judge_challenger(database_url)
    except Exception:
        logger.warning("live promotion check failed; the next run checks again", exc_info=True)
        return None
    if check is None:
        return None
    for run in check.closed:
        logger.info("challenger v%s: %s (%s)", run.challenger_version, run.status, run.reason)
    if check.decision is not None:
        decision = check.decision
        logger.info(
            "challenger v%s on live traffic: %s; %s", decision.challenger_version, decision.verdict, decision.reason
        )
    return check
