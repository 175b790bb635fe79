"""The reference data of a model version: the frame its training run logged next to the model.

Each version is compared with the data it was trained on, so a window that mixes versions (during a
promotion) is split and every part judged against its own reference. Loaded once per version and process:
the file is immutable once logged.
"""

from __future__ import annotations

import tempfile
from functools import lru_cache
from pathlib import Path

import pandas as pd

from churn_common.errors import PermanentError
from churn_common.registry import (
    PREDICTION_COLUMN,
    PROBABILITY_COLUMN,
    REFERENCE_ARTIFACT_DIR,
    REFERENCE_FILE,
    TARGET_COLUMN,
    configure_mlflow,
)
from churn_common.schema import FEATURE_COLUMNS

REFERENCE_COLUMNS: tuple[str, ...] = (*FEATURE_COLUMNS, TARGET_COLUMN, PROBABILITY_COLUMN, PREDICTION_COLUMN)
# Kept when present: which rows were held out of training (what quality estimation calibrates on).
OPTIONAL_REFERENCE_COLUMNS: tuple[str, ...] = ("split",)


class ReferenceNotFoundError(PermanentError, LookupError):
    """The model version, its training run or the run's reference file is missing."""


@lru_cache(maxsize=8)
def load_reference(model_name: str, model_version: str) -> pd.DataFrame:
    """The reference frame of ``model_name`` version ``model_version`` (callers must not mutate it)."""
    import mlflow.artifacts
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    configure_mlflow()
    artifact = f"{REFERENCE_ARTIFACT_DIR}/{REFERENCE_FILE}"
    try:
        run_id = MlflowClient().get_model_version(model_name, model_version).run_id
        if not run_id:
            raise ReferenceNotFoundError(f"{model_name} version {model_version} has no training run")
        with tempfile.TemporaryDirectory(prefix="reference-") as folder:
            path = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=artifact, dst_path=folder)
            frame = pd.read_parquet(Path(path))
    except MlflowException as exc:
        raise ReferenceNotFoundError(f"no {artifact} for {model_name} version {model_version}: {exc}") from exc
    missing = [c for c in REFERENCE_COLUMNS if c not in frame.columns]
    if missing:
        raise ReferenceNotFoundError(f"reference of {model_name} version {model_version} lacks {', '.join(missing)}")
    return frame.loc[:, [*REFERENCE_COLUMNS, *(c for c in OPTIONAL_REFERENCE_COLUMNS if c in frame.columns)]]
