"""Train the XGBoost churn model, log it with its reference data, register it, gate the alias.

``python -m training.train`` (``make model-registry``); ``--if-missing`` leaves an existing alias alone,
which is what the demo uses so that a second run does not retrain. The parameters come from a bounded
search (:mod:`training.tuning`, ``TUNING_TRIALS`` / ``TUNING_TIMEOUT_SECONDS``, ``--trials`` /
``--timeout-seconds``) whose trials are nested runs under the version's run.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from churn_common.mlflow_credentials import mlflow_errors_redacted
from churn_common.registry import ensure_experiment
from churn_common.settings import Settings, get_settings
from data.dataset import locate_training_data, read_churn_csv
from training.aliases import move_alias
from training.evaluate import Gate
from training.model import fit_model, holdout_metrics, log_model_version, split_holdout
from training.tuning import search_parameters

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
    trials_completed: int = 0
    best_cv_f1: float | None = None


def train_and_register(
    *, settings: Settings | None = None, data_path: Path | None = None, gate: Gate | None = None
) -> TrainingResult:
    settings = settings or get_settings()
    with mlflow_errors_redacted():
        return _train_and_register(settings=settings, data_path=data_path, gate=gate)


def _train_and_register(*, settings: Settings, data_path: Path | None, gate: Gate | None) -> TrainingResult:
    import mlflow
    from mlflow import MlflowClient

    gate = gate or Gate.from_settings(settings)
    if data_path is None:
        data_path, data_source = locate_training_data(settings)
    else:
        data_source = "explicit"
    frame = read_churn_csv(data_path)
    train, holdout = split_holdout(frame)
    # The version's run is opened before the search so that the trials nest under it; a failure while
    # searching or fitting marks it failed.
    with mlflow.start_run(experiment_id=ensure_experiment(settings)) as run:
        search = search_parameters(
            train,
            trials=settings.tuning_trials,
            timeout_seconds=settings.tuning_timeout_seconds,
            experiment_id=run.info.experiment_id,
        )
        model = fit_model(train, search.params)
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
        params=search.params,
        run_id=run.info.run_id,
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
    return TrainingResult(
        logged.version,
        logged.run_id,
        metrics,
        data_source,
        promoted,
        failures,
        trials_completed=search.trials_completed,
        best_cv_f1=search.best_cv_f1,
    )


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
    trials: Annotated[
        int | None, typer.Option(min=0, help="Parameter search trials (TUNING_TRIALS); 0: the fixed parameters.")
    ] = None,
    timeout_seconds: Annotated[
        float | None, typer.Option(help="Parameter search time limit in seconds (TUNING_TIMEOUT_SECONDS).")
    ] = None,
) -> None:
    """Search parameters, train, log, register; set the serving alias only when the holdout gate passes."""
    if timeout_seconds is not None and timeout_seconds <= 0:
        raise typer.BadParameter("must be positive", param_hint="--timeout-seconds")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    overrides = {"tuning_trials": trials, "tuning_timeout_seconds": timeout_seconds}
    settings = get_settings().model_copy(update={k: v for k, v in overrides.items() if v is not None})
    if if_missing and alias_exists(settings):
        typer.echo(f"{settings.model_name}@{settings.model_alias} already registered; skipping training.")
        return
    result = train_and_register(settings=settings, data_path=data)
    summary = ", ".join(f"{k}={v:.3f}" for k, v in result.metrics.items())
    if result.best_cv_f1 is not None:
        typer.echo(f"{result.trials_completed} search trials, best cross-validated f1={result.best_cv_f1:.3f}")
    typer.echo(f"trained on {result.data_source} data: version {result.version} ({summary})")
    if not result.promoted:
        typer.echo(f"gate failed, alias {settings.model_alias!r} not set: {'; '.join(result.gate_failures)}", err=True)
        sys.exit(1)
    typer.echo(f"{settings.model_name}@{settings.model_alias} -> version {result.version}")


if __name__ == "__main__":
    app()
