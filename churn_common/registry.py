"""Names and locations in the MLflow registry that training, scoring and monitoring agree on."""

from __future__ import annotations

import os
from pathlib import Path

from churn_common.settings import Settings, get_settings

EXPERIMENT_NAME = "churn-model"
MODEL_ARTIFACT_NAME = "model"
REFERENCE_ARTIFACT_DIR = "reference"
REFERENCE_FILE = "reference.parquet"
PROBABILITY_COLUMN = "churn_probability"
PREDICTION_COLUMN = "churn_prediction"
TARGET_COLUMN = "label"
DATA_SOURCE_TAG = "data_source"


def configure_mlflow(settings: Settings | None = None) -> str:
    """Point MLflow at the configured store; returns the tracking URI.

    Imported lazily: the scorer only needs the client, and ``import mlflow`` costs about a second.
    """
    import mlflow

    settings = settings or get_settings()
    uri = settings.resolved_mlflow_uri
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return uri


def ensure_experiment(settings: Settings | None = None) -> str:
    """The experiment, created with its artifacts inside the local state folder for local stores."""
    import mlflow

    settings = settings or get_settings()
    configure_mlflow(settings)
    experiment = mlflow.get_experiment_by_name(EXPERIMENT_NAME)
    if experiment is not None:
        return experiment.experiment_id
    location = None
    if settings.resolved_mlflow_uri.startswith("sqlite:"):
        settings.mlflow_artifact_root.mkdir(parents=True, exist_ok=True)
        location = settings.mlflow_artifact_root.as_uri()
    return mlflow.create_experiment(EXPERIMENT_NAME, artifact_location=location)
