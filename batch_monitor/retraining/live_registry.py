"""What the live promotion reads from and writes to the MLflow registry: aliases, the gate, decision tags.

The decision is written on the challenger's version before any alias moves, so a check interrupted between
the two finds it there and finishes the ledger row from it instead of judging again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from batch_monitor.retraining.live_promotion import F1_FORMAT, LiveDecision, LiveVerdict
from churn_common.settings import Settings
from training import HOLDOUT_METRIC_PREFIX, Gate, move_alias

if TYPE_CHECKING:  # imported where it is used: `import mlflow` costs about a second
    from mlflow import MlflowClient

TAG_PREFIX = "live_promotion"
DECISION_TAG = f"{TAG_PREFIX}.decision"
WINDOWS_TAG = f"{TAG_PREFIX}.windows"
CHAMPION_F1_TAG = f"{TAG_PREFIX}.champion_f1"
CHALLENGER_F1_TAG = f"{TAG_PREFIX}.challenger_f1"
SERVING_VERSION_TAG = f"{TAG_PREFIX}.serving_version"
REASON_TAG = f"{TAG_PREFIX}.reason"
DECIDED_AT_TAG = f"{TAG_PREFIX}.decided_at"
# MLflow refuses longer tag values (its limit is 5,000 characters on every backend store).
MAX_TAG_CHARS = 5000


@dataclass(frozen=True, slots=True)
class Aliases:
    serving: str
    challenger: str | None


def current_aliases(client: MlflowClient, *, settings: Settings) -> Aliases:
    """Both aliases from one registry read, so they are seen as they were at one moment."""
    aliases = client.get_registered_model(settings.model_name).aliases
    challenger = aliases.get(settings.challenger_alias)
    return Aliases(str(aliases[settings.model_alias]), None if challenger is None else str(challenger))


def gate_failures(client: MlflowClient, *, model_name: str, version: str, gate: Gate) -> list[str]:
    """The gate on the holdout figures the version's run logged; a version without them (registered by hand
    from elsewhere) cannot show that it passes."""
    run_id = client.get_model_version(model_name, version).run_id
    if not run_id:
        return ["no training run to read holdout figures from"]
    metrics = client.get_run(run_id).data.metrics
    gated = list(gate.limits())
    missing = [name for name in gated if f"{HOLDOUT_METRIC_PREFIX}{name}" not in metrics]
    if missing:
        return [f"its run logged no holdout {', '.join(missing)}"]
    return gate.failures({name: float(metrics[f"{HOLDOUT_METRIC_PREFIX}{name}"]) for name in gated})


def decision_tags(decision: LiveDecision, *, status: str, decided_at: datetime) -> dict[str, str]:
    def figures(values: list[float | None]) -> str:
        return ",".join("" if v is None else format(v, F1_FORMAT) for v in values)

    return {
        DECISION_TAG: status,
        WINDOWS_TAG: ",".join(w.window.start.isoformat() for w in decision.windows),
        CHAMPION_F1_TAG: figures([w.f1 for w in decision.windows]),
        CHALLENGER_F1_TAG: figures([w.challenger_f1 for w in decision.windows]),
        SERVING_VERSION_TAG: decision.serving_version,
        REASON_TAG: decision.reason[:MAX_TAG_CHARS],
        DECIDED_AT_TAG: decided_at.isoformat(),
    }


def recorded_decision(client: MlflowClient, *, model_name: str, version: str) -> Mapping[str, str]:
    """The live promotion tags of a version (empty when none was decided on it)."""
    tags = dict(client.get_model_version(model_name, version).tags)
    return {key: value for key, value in tags.items() if key.startswith(f"{TAG_PREFIX}.")}


def apply_decision(client: MlflowClient, decision: LiveDecision, *, status: str, settings: Settings) -> None:
    """Tags first, then the aliases: a promoted challenger takes the serving alias; either way the challenger
    alias is parked on the version serving afterwards, so the scorer stops shadow-scoring it."""
    if not decision.final:
        raise ValueError(f"only a final decision moves aliases, not {decision.verdict}")
    name, version = settings.model_name, decision.challenger_version
    for key, value in decision_tags(decision, status=status, decided_at=datetime.now(tz=UTC)).items():
        client.set_model_version_tag(name, version, key, value)
    serving = decision.serving_version
    if decision.verdict is LiveVerdict.PROMOTE:
        move_alias(client, model_name=name, alias=settings.model_alias, version=version, settings=settings)
        serving = version
    park_challenger_alias(client, version=version, serving_version=serving, settings=settings)


def park_challenger_alias(client: MlflowClient, *, version: str, serving_version: str, settings: Settings) -> None:
    """Points the challenger alias at the serving version while it still names ``version`` (it may have
    moved on). The scorer and the check read an alias on the serving version as "no challenger", as after a
    holdout promotion; deleting the alias would say the same but needs MANAGE on the model, and the pipeline's
    login has EDIT (``infra/docker/entrypoint.py``)."""
    named = client.get_registered_model(settings.model_name).aliases.get(settings.challenger_alias)
    if named is None or str(named) != version or version == serving_version:
        return
    move_alias(
        client,
        model_name=settings.model_name,
        alias=settings.challenger_alias,
        version=serving_version,
        settings=settings,
    )
