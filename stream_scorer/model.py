"""The serving model: resolved from the registry alias, loaded with plain xgboost, cached per container.

The alias is re-resolved every ``MODEL_REFRESH_SECONDS``, so moving it (a promotion) takes effect
without a redeploy. Loading a Booster directly avoids pyfunc and pandas on the hot and cold paths.
"""

from __future__ import annotations

import logging
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xgboost

log = logging.getLogger(__name__)

MODEL_FILES = ("model.ubj", "model.json", "model.xgb")
DECISION_THRESHOLD = 0.5


@dataclass(frozen=True, slots=True)
class ModelVersion:
    name: str
    version: str
    source: str


@dataclass(frozen=True, slots=True)
class LoadedModel:
    name: str
    version: str
    booster: xgboost.Booster

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        return np.asarray(self.booster.inplace_predict(features), dtype=np.float64)


def resolve_alias(name: str, alias: str) -> ModelVersion:
    from mlflow import MlflowClient

    from churn_common.registry import configure_mlflow

    configure_mlflow()
    version = MlflowClient().get_model_version_by_alias(name, alias)
    return ModelVersion(name=name, version=str(version.version), source=version.source)


def load_booster(version: ModelVersion) -> LoadedModel:
    import mlflow.artifacts

    target = Path(tempfile.mkdtemp(prefix=f"model-{version.version}-"))
    folder = Path(mlflow.artifacts.download_artifacts(artifact_uri=version.source, dst_path=str(target)))
    path = next((p for name in MODEL_FILES for p in folder.rglob(name)), None)
    if path is None:
        raise FileNotFoundError(f"no xgboost model file in {version.source}")
    booster = xgboost.Booster()
    booster.load_model(str(path))
    booster.set_param({"nthread": 2})
    return LoadedModel(name=version.name, version=version.version, booster=booster)


class ModelCache:
    """Holds the loaded model; refreshes the alias at most every ``refresh_seconds``.

    If the registry is unreachable on a refresh, the loaded model keeps serving (logged); with no
    model loaded yet the error propagates, so the batch fails and Lambda retries it.
    """

    def __init__(
        self,
        *,
        name: str,
        alias: str,
        refresh_seconds: float,
        resolve: Callable[[str, str], ModelVersion] = resolve_alias,
        load: Callable[[ModelVersion], LoadedModel] = load_booster,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._name, self._alias, self._refresh = name, alias, refresh_seconds
        self._resolve, self._load, self._clock = resolve, load, clock
        self._model: LoadedModel | None = None
        self._checked_at = float("-inf")
        self._lock = threading.Lock()

    def get(self) -> LoadedModel:
        with self._lock:
            if self._model is not None and self._clock() - self._checked_at < self._refresh:
                return self._model
            try:
                version = self._resolve(self._name, self._alias)
            except Exception:
                if self._model is None:
                    raise
                log.warning("registry unreachable; keeping model version %s", self._model.version, exc_info=True)
                self._checked_at = self._clock()
                return self._model
            if self._model is None or self._model.version != version.version:
                self._model = self._load(version)
                log.info("serving %s version %s", version.name, version.version)
            self._checked_at = self._clock()
            return self._model
