"""Train a challenger on recent labelled records, compare it with the serving version, move the aliases.

The records are split once into train and holdout (stratified, as training does). The challenger is
fitted on the train part through :mod:`training.model`, logged with the whole frame as its reference
(so the monitor judges its windows against the data it learnt from) and registered. Both versions are then
scored on the same holdout (:func:`batch_monitor.retraining.decision.decide_promotion`). With live promotion
(``PROMOTION_LIVE_WINDOWS`` > 0) only a winner gets the challenger alias, so the scorer shadow-scores it and
the monitor promotes it once it also wins on live traffic (:mod:`batch_monitor.retraining.live_promotion`);
a loser gets no alias, so it never displaces a challenger on trial. With 0 every challenger gets the
challenger alias and a winner the serving alias at once. Each alias move leaves its audit entry
(:func:`training.aliases.move_alias`).

MLflow's errors quote the URL they requested: they leave here with any credentials in it masked, since
the flow records them in the ledger and the worker's logs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from batch_monitor.retraining.decision import decide_promotion
from churn_common.errors import PermanentError
from churn_common.mlflow_credentials import mlflow_errors_redacted
from churn_common.registry import configure_mlflow
from churn_common.schema import LABEL_COLUMN
from churn_common.settings import Settings
from training import Gate, fit_model, holdout_metrics, load_version, log_model_version, move_alias, split_holdout

DATA_SOURCE = "recent_predictions"
RETRAINED_FROM_TAG = "retrained_from"
TRIGGER_TAG = "retraining_trigger"
# Each class needs a few rows in both parts of the stratified split.
MIN_ROWS_PER_CLASS = 4


class NotEnoughDataError(PermanentError, ValueError):
    """Too few labelled records, or a single class: nothing sensible can be trained or compared."""


@dataclass(frozen=True, slots=True)
class ChallengerResult:
    challenger_version: str
    serving_version: str
    challenger_metrics: Mapping[str, float]
    serving_metrics: Mapping[str, float]
    n_train_rows: int
    n_holdout_rows: int
    promoted: bool
    reason: str
    challenging: bool = False


def aliases_after_holdout(*, wins: bool, settings: Settings) -> list[str]:
    """The aliases the new version takes once the holdout has judged it (see the module doc)."""
    if settings.promotion_live_windows > 0:
        return [settings.challenger_alias] if wins else []
    return [settings.challenger_alias, *([settings.model_alias] if wins else [])]


def check_trainable(frame: pd.DataFrame, *, min_rows: int) -> None:
    counts = frame[LABEL_COLUMN].value_counts()
    if len(frame) < min_rows:
        raise NotEnoughDataError(f"{len(frame)} labelled records, at least {min_rows} needed")
    if len(counts) < 2 or counts.min() < MIN_ROWS_PER_CLASS:
        raise NotEnoughDataError(f"labels {dict(counts)}: both classes need at least {MIN_ROWS_PER_CLASS} records")


def train_challenger(
    frame: pd.DataFrame, *, serving_version: str, trigger: str, settings: Settings
) -> ChallengerResult:
    check_trainable(frame, min_rows=settings.retrain_min_rows)
    with mlflow_errors_redacted():
        return _train_challenger(frame, serving_version=serving_version, trigger=trigger, settings=settings)


def _train_challenger(
    frame: pd.DataFrame, *, serving_version: str, trigger: str, settings: Settings
) -> ChallengerResult:
    from mlflow import MlflowClient

    configure_mlflow(settings)
    train, holdout = split_holdout(frame)
    challenger = fit_model(train)
    challenger_metrics = holdout_metrics(challenger, holdout)
    serving_metrics = holdout_metrics(load_version(settings.model_name, serving_version), holdout)
    gate = Gate.from_settings(settings)
    promotion = decide_promotion(challenger_metrics, serving_metrics, gate_failures=gate.failures(challenger_metrics))
    logged = log_model_version(
        model=challenger,
        frame=frame,
        holdout=holdout,
        metrics=challenger_metrics,
        data_source=DATA_SOURCE,
        settings=settings,
        tags={RETRAINED_FROM_TAG: serving_version, TRIGGER_TAG: trigger, "promotion": promotion.reason},
        extra_metrics={f"serving_holdout_{k}": v for k, v in serving_metrics.items()},
    )
    client = MlflowClient()
    client.set_model_version_tag(settings.model_name, logged.version, RETRAINED_FROM_TAG, serving_version)
    live = settings.promotion_live_windows > 0
    for alias in aliases_after_holdout(wins=promotion.promote, settings=settings):
        move_alias(client, model_name=settings.model_name, alias=alias, version=logged.version, settings=settings)
    return ChallengerResult(
        challenger_version=logged.version,
        serving_version=serving_version,
        challenger_metrics=challenger_metrics,
        serving_metrics=serving_metrics,
        n_train_rows=len(train),
        n_holdout_rows=len(holdout),
        promoted=promotion.promote and not live,
        reason=promotion.reason
        + (
            f"; on live trial over {settings.promotion_live_windows} labelled windows"
            if promotion.promote and live
            else ""
        ),
        challenging=promotion.promote and live,
    )


def serving_version(settings: Settings) -> str:
    """The version the serving alias names now (what the scorer will be using)."""
    from mlflow import MlflowClient

    with mlflow_errors_redacted():
        configure_mlflow(settings)
        return str(MlflowClient().get_model_version_by_alias(settings.model_name, settings.model_alias).version)
