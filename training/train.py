"""Train the XGBoost churn model, log it with its reference data, register it, gate the alias.

``python -m training.train`` (``make model-registry``); ``--if-missing`` leaves an existing alias alone,
which is what the demo uses so that a second run does not retrain.
"""

from __future__ import annotations

import logging
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pandas as pd
import typer
from sklearn.model_selection import train_test_split
from xgboost import XGBClassifier

from churn_common.registry import (
    DATA_SOURCE_TAG,
    MODEL_ARTIFACT_NAME,
    PREDICTION_COLUMN,
    PROBABILITY_COLUMN,
    REFERENCE_ARTIFACT_DIR,
    REFERENCE_FILE,
    TARGET_COLUMN,
    ensure_experiment,
)
from churn_common.schema import FEATURE_COLUMNS, LABEL_COLUMN
from churn_common.settings import Settings, get_settings
from data.dataset import locate_training_data, read_churn_csv
from training.evaluate import DEFAULT_DECISION_THRESHOLD, Gate, classification_metrics

log = logging.getLogger(__name__)

HOLDOUT_FRACTION = 0.25
RANDOM_SEED = 42
XGB_PARAMS: dict[str, float | int | str] = {
    "n_estimators": 200,
    "max_depth": 4,
    "learning_rate": 0.08,
    "subsample": 0.9,
    "colsample_bytree": 0.9,
    "objective": "binary:logistic",
    "eval_metric": "logloss",
    "n_jobs": 2,
    "random_state": RANDOM_SEED,
}


@dataclass(frozen=True, slots=True)
class TrainingResult:
    version: str
    run_id: str
    metrics: dict[str, float]
    data_source: str
    promoted: bool
    gate_failures: list[str]


def _features(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.loc[:, list(FEATURE_COLUMNS)].astype("float32")


def build_reference(frame: pd.DataFrame, model: XGBClassifier, holdout_index: pd.Index) -> pd.DataFrame:
    """Training data with the model's own outputs: what monitoring compares each window against."""
    reference = frame.loc[:, list(FEATURE_COLUMNS)].copy()
    reference[TARGET_COLUMN] = frame[LABEL_COLUMN].astype(int)
    probabilities = model.predict_proba(_features(frame))[:, 1]
    reference[PROBABILITY_COLUMN] = probabilities
    reference[PREDICTION_COLUMN] = (probabilities >= DEFAULT_DECISION_THRESHOLD).astype(int)
    reference["split"] = np.where(frame.index.isin(holdout_index), "holdout", "train")
    return reference.reset_index(drop=True)


def train_and_register(
    *, settings: Settings | None = None, data_path: Path | None = None, gate: Gate | None = None
) -> TrainingResult:
    import mlflow
    from mlflow import MlflowClient
    from mlflow.models import infer_signature

    settings = settings or get_settings()
    gate = gate or Gate(settings.min_f1, settings.min_precision, settings.min_recall, settings.min_accuracy)
    if data_path is None:
        data_path, data_source = locate_training_data(settings)
    else:
        data_source = "explicit"
    frame = read_churn_csv(data_path)
    train, holdout = train_test_split(
        frame, test_size=HOLDOUT_FRACTION, random_state=RANDOM_SEED, stratify=frame[LABEL_COLUMN]
    )

    model = XGBClassifier(**XGB_PARAMS)
    model.fit(_features(train), train[LABEL_COLUMN])
    metrics = classification_metrics(holdout[LABEL_COLUMN].to_numpy(), model.predict_proba(_features(holdout))[:, 1])
    failures = gate.failures(metrics)

    experiment_id = ensure_experiment(settings)
    client = MlflowClient()
    with mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.set_tags({DATA_SOURCE_TAG: data_source, "data_file": data_path.name})
        mlflow.log_params(
            {
                **XGB_PARAMS,
                "holdout_fraction": HOLDOUT_FRACTION,
                "rows": len(frame),
                "threshold": DEFAULT_DECISION_THRESHOLD,
            }
        )
        mlflow.log_metrics({f"holdout_{k}": v for k, v in metrics.items()})
        example = _features(holdout.head(5))
        info = mlflow.xgboost.log_model(
            model,
            name=MODEL_ARTIFACT_NAME,
            registered_model_name=settings.model_name,
            signature=infer_signature(example, model.predict_proba(example)[:, 1]),
            input_example=example,
            model_format="ubj",
        )
        with tempfile.TemporaryDirectory() as tmp:
            reference_path = Path(tmp) / REFERENCE_FILE
            build_reference(frame, model, holdout.index).to_parquet(reference_path, index=False)
            mlflow.log_artifact(str(reference_path), artifact_path=REFERENCE_ARTIFACT_DIR)
    version = str(info.registered_model_version)
    client.set_model_version_tag(settings.model_name, version, DATA_SOURCE_TAG, data_source)
    promoted = not failures
    if promoted:
        client.set_registered_model_alias(settings.model_name, settings.model_alias, version)
    return TrainingResult(version, run.info.run_id, metrics, data_source, promoted, failures)


def alias_exists(settings: Settings | None = None) -> bool:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from churn_common.registry import configure_mlflow

    settings = settings or get_settings()
    configure_mlflow(settings)
    try:
        MlflowClient().get_model_version_by_alias(settings.model_name, settings.model_alias)
    except MlflowException:
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
