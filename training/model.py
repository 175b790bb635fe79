"""The one training code path: split, fit, score a holdout, log the model with its reference, register it.

``make model-registry`` (:mod:`training.train`) and the retraining flow (:mod:`batch_monitor.retraining`)
both go through here, so a retrained version is built, logged and referenced exactly like the first one.
It knows nothing of where the rows come from (no dataset readers), which keeps the monitor's image free
of them.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split
from xgboost import XGBClassifier

from churn_common.errors import PermanentError
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
from churn_common.settings import Settings
from training.evaluate import DEFAULT_DECISION_THRESHOLD, classification_metrics

HOLDOUT_FRACTION = 0.25
RANDOM_SEED = 42
# Prefix of the holdout figures each registered version's run logs (what the promotion gate reads back).
HOLDOUT_METRIC_PREFIX = "holdout_"
# What loading a logged version as an MLflow pyfunc imports, by distribution: the first installed name of each
# group is pinned at its installed version (the project installs ``xgboost-cpu``; ``xgboost`` where it is not).
PYFUNC_DISTRIBUTIONS: Sequence[Sequence[str]] = (
    ("mlflow",),
    ("xgboost-cpu", "xgboost"),
    ("scikit-learn",),
    ("numpy",),
    ("pandas",),
    ("scipy",),
)


class MissingDistributionError(PermanentError, LookupError):
    """A distribution a logged model needs to load is not installed here, so it cannot be pinned."""


# XGBClassifier's keyword arguments.
ModelParams = Mapping[str, float | int | str]
# The fixed parameters: what every model is trained with unless a search (training/tuning.py) chose others.
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
class LoggedVersion:
    version: str
    run_id: str


def feature_matrix(frame: pd.DataFrame) -> pd.DataFrame:
    """The model's input: the schema's features in schema order, as the scorer builds them."""
    return frame.loc[:, list(FEATURE_COLUMNS)].astype("float32")


def split_holdout(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train and holdout rows, stratified on the label so both keep its churn rate."""
    train, holdout = train_test_split(
        frame, test_size=HOLDOUT_FRACTION, random_state=RANDOM_SEED, stratify=frame[LABEL_COLUMN]
    )
    return train, holdout


def fit_model(train: pd.DataFrame, params: ModelParams = XGB_PARAMS) -> XGBClassifier:
    """Every model, a search's trials included, is fitted here, so a tuned version differs from a fixed
    one only in ``params``."""
    model = XGBClassifier(**params)
    model.fit(feature_matrix(train), train[LABEL_COLUMN])
    return model


def holdout_metrics(model: XGBClassifier, holdout: pd.DataFrame) -> dict[str, float]:
    return classification_metrics(holdout[LABEL_COLUMN].to_numpy(), model.predict_proba(feature_matrix(holdout))[:, 1])


def build_reference(frame: pd.DataFrame, model: XGBClassifier, holdout_index: pd.Index) -> pd.DataFrame:
    """Training data with the model's own outputs: what monitoring compares each window against."""
    reference = frame.loc[:, list(FEATURE_COLUMNS)].copy()
    reference[TARGET_COLUMN] = frame[LABEL_COLUMN].astype(int)
    probabilities = model.predict_proba(feature_matrix(frame))[:, 1]
    reference[PROBABILITY_COLUMN] = probabilities
    reference[PREDICTION_COLUMN] = (probabilities >= DEFAULT_DECISION_THRESHOLD).astype(int)
    reference["split"] = np.where(frame.index.isin(holdout_index), "holdout", "train")
    return reference.reset_index(drop=True)


@cache
def pyfunc_requirements(groups: Sequence[Sequence[str]] = PYFUNC_DISTRIBUTIONS) -> tuple[str, ...]:
    """Pinned requirements of a logged version, named instead of inferred: MLflow's inference loads the model
    in a fresh Python per logged version, and it named two distributions of one module (docs/training.md)."""
    pins = []
    for names in groups:
        pin = next((f"{name}=={version}" for name in names if (version := _installed_version(name))), None)
        if pin is None:
            raise MissingDistributionError(f"none of {', '.join(names)} is installed: a logged model could not load")
        pins.append(pin)
    return tuple(pins)


def _installed_version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def log_model_version(
    *,
    model: XGBClassifier,
    frame: pd.DataFrame,
    holdout: pd.DataFrame,
    metrics: Mapping[str, float],
    data_source: str,
    settings: Settings,
    tags: Mapping[str, str] | None = None,
    extra_metrics: Mapping[str, float] | None = None,
    params: ModelParams = XGB_PARAMS,
    run_id: str | None = None,
) -> LoggedVersion:
    """One MLflow run: parameters, holdout metrics, the model (registered as a new version) and the
    reference data (``frame`` scored by ``model``), which the monitor loads for every later window.

    ``params`` are the ones ``model`` was fitted with. ``run_id`` names a finished run to log into
    instead of a new one: the run a parameter search nested its trials under, so that the version's run
    holds its trials too."""
    import mlflow
    from mlflow import MlflowClient
    from mlflow.models import infer_signature

    experiment_id = ensure_experiment(settings)
    with mlflow.start_run(run_id=run_id, experiment_id=experiment_id) as run:
        mlflow.set_tags({DATA_SOURCE_TAG: data_source, **(tags or {})})
        mlflow.log_params(
            {
                **params,
                "holdout_fraction": HOLDOUT_FRACTION,
                "rows": len(frame),
                "threshold": DEFAULT_DECISION_THRESHOLD,
            }
        )
        mlflow.log_metrics({f"{HOLDOUT_METRIC_PREFIX}{k}": v for k, v in metrics.items()})
        if extra_metrics:
            mlflow.log_metrics(dict(extra_metrics))
        example = feature_matrix(holdout.head(5))
        info = mlflow.xgboost.log_model(
            model,
            name=MODEL_ARTIFACT_NAME,
            registered_model_name=settings.model_name,
            signature=infer_signature(example, model.predict_proba(example)[:, 1]),
            input_example=example,
            model_format="ubj",
            pip_requirements=list(pyfunc_requirements()),
        )
        with tempfile.TemporaryDirectory() as tmp:
            reference_path = Path(tmp) / REFERENCE_FILE
            build_reference(frame, model, holdout.index).to_parquet(reference_path, index=False)
            mlflow.log_artifact(str(reference_path), artifact_path=REFERENCE_ARTIFACT_DIR)
    version = str(info.registered_model_version)
    MlflowClient().set_model_version_tag(settings.model_name, version, DATA_SOURCE_TAG, data_source)
    return LoggedVersion(version, run.info.run_id)


def load_version(model_name: str, version: str) -> XGBClassifier:
    """A registered version as the estimator it was logged as (for holdout comparisons, not for serving)."""
    import mlflow.xgboost

    return mlflow.xgboost.load_model(f"models:/{model_name}/{version}")
