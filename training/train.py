"""Train the XGBoost churn model, log it with its reference data, register it, gate the alias.

``python -m training.train`` (``make model-registry``); ``--if-missing`` leaves an existing alias alone,
which is what the demo uses so that a second run does not retrain.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from churn_common.mlflow_credentials import mlflow_errors_redacted
from churn_common.settings import Settings, get_settings
from data.dataset import locate_training_data, read_churn_csv
from training.aliases import move_alias
from training.evaluate import Gate
from training.model import fit_model, holdout_metrics, log_model_version, split_holdout

log = logging.getLogger(__name__)

# What MLflow answers for a model or an alias that does not exist (local store and server alike).
ALIAS_NOT_FOUND_CODES = frozenset({"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"})


@dataclass(frozen=True, slots=True)
class TrainingResult:
    version: str
    run_id: str
    metrics: dict[str, float]
    data_source: str
    promoted: bool
    gate_failures: list[str]


def train_and_register(
    *, settings: Settings | None = None, data_path: Path | None = None, gate: Gate | None = None
) -> TrainingResult:
    settings = settings or get_settings()
    with mlflow_errors_redacted():
        return _train_and_register(settings=settings, data_path=data_path, gate=gate)


def _train_and_register(*, settings: Settings, data_path: Path | None, gate: Gate | None) -> TrainingResult:
    from mlflow import MlflowClient

    gate = gate or Gate(settings.min_f1, settings.min_precision, settings.min_recall, settings.min_accuracy)
    if data_path is None:
        data_path, data_source = locate_training_data(settings)
    else:
        data_source = "explicit"
    frame = read_churn_csv(data_path)
    train, holdout = split_holdout(frame)
    model = fit_model(train)
    metrics = holdout_metrics(model, holdout)
    failures = gate.failures(metrics)
    logged = log_model_version(
        model=model,
        frame=frame,
        holdout=holdout,
        metrics=metrics,
        data_source=data_source,
        settings=settings,
        tags={"data_file": data_path.name},
    )
    promoted = not failures
    if promoted:
        move_alias(
            MlflowClient(),
            model_name=settings.model_name,
            alias=settings.model_alias,
            version=logged.version,
            settings=settings,
        )
    return TrainingResult(logged.version, logged.run_id, metrics, data_source, promoted, failures)


def alias_exists(settings: Settings | None = None) -> bool:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from churn_common.registry import configure_mlflow

    settings = settings or get_settings()
    with mlflow_errors_redacted():
        configure_mlflow(settings)
        try:
            MlflowClient().get_model_version_by_alias(settings.model_name, settings.model_alias)
        except MlflowException as exc:
            # A refused login is not a missing alias: training again would fail at its first request.
            if exc.error_code not in ALIAS_NOT_FOUND_CODES:
                raise
            return False
    return True


def ensure_model(*, console: Any = None) -> None:
    """Train and register when the serving alias is missing (what the demo needs before it starts)."""
    settings = get_settings()
    if alias_exists(settings):
        return
    say = console.print if console is not None else print
    say(f"no {settings.model_name}@{settings.model_alias} in the registry: training one")
    result = train_and_register(settings=settings)
    if not result.promoted:
        raise RuntimeError(f"trained model failed the gate: {'; '.join(result.gate_failures)}")
    say(f"registered version {result.version} ({result.data_source} data), alias {settings.model_alias}")


app = typer.Typer(add_completion=False)


@app.command()
def main(
    if_missing: Annotated[
        bool, typer.Option("--if-missing", help="Do nothing when the serving alias already exists.")
    ] = False,
    data: Annotated[Path | None, typer.Option(help="Train on this CSV instead of the located dataset.")] = None,
) -> None:
    """Train, log, register; set the serving alias only when the holdout gate passes."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    settings = get_settings()
    if if_missing and alias_exists(settings):
        typer.echo(f"{settings.model_name}@{settings.model_alias} already registered; skipping training.")
        return
    result = train_and_register(settings=settings, data_path=data)
    summary = ", ".join(f"{k}={v:.3f}" for k, v in result.metrics.items())
    typer.echo(f"trained on {result.data_source} data: version {result.version} ({summary})")
    if not result.promoted:
        typer.echo(f"gate failed, alias {settings.model_alias!r} not set: {'; '.join(result.gate_failures)}", err=True)
        sys.exit(1)
    typer.echo(f"{settings.model_name}@{settings.model_alias} -> version {result.version}")


if __name__ == "__main__":
    app()
