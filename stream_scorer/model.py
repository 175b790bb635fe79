"""The serving model: resolved from the registry alias, loaded with plain xgboost, cached per container.

The alias is re-resolved every ``MODEL_REFRESH_SECONDS``, so moving it (a promotion) takes effect
without a redeploy. The challenger alias, when the cache is given one, is re-resolved at the same refresh
(:mod:`stream_scorer.challenger`), so shadow scoring adds no registry request between refreshes. Loading
a Booster from the model file avoids pyfunc and pandas on the hot and cold paths.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import xgboost

from churn_common.mlflow_credentials import credentials_source
from churn_common.schema import DECISION_THRESHOLD
from churn_common.settings import get_settings
from stream_scorer.challenger import refreshed_challenger
from stream_scorer.model_registry import ModelFile, ModelRegistry, ModelVersion, registry_for

log = logging.getLogger(__name__)

PREDICT_THREADS = min(os.cpu_count() or 1, 2)

__all__ = [
    "DECISION_THRESHOLD",
    "LoadedModel",
    "ModelCache",
    "ModelVersion",
    "ServingModels",
    "load_booster",
    "resolve_alias",
]


@dataclass(frozen=True, slots=True)
class LoadedModel:
    name: str
    version: str
    booster: xgboost.Booster

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """Churn probability per row of a (records x features) matrix."""
        return np.asarray(self.booster.inplace_predict(features), dtype=np.float64)


@dataclass(frozen=True, slots=True)
class ServingModels:
    """What a batch is scored with: the champion decides, the challenger (if any) is only recorded beside it."""

    champion: LoadedModel
    challenger: LoadedModel | None = None


def booster_from(model_file: ModelFile) -> xgboost.Booster:
    booster = xgboost.Booster()
    booster.load_model(bytearray(model_file.content))
    booster.set_param({"nthread": PREDICT_THREADS})
    return booster


def configured_registry() -> ModelRegistry:
    """The registry of the settings, logged in with the configured MLflow credentials (if any)."""
    settings = get_settings()
    return registry_for(settings.resolved_mlflow_uri, credentials=credentials_source(settings))


def resolve_alias(name: str, alias: str) -> ModelVersion:
    return configured_registry().resolve(name, alias)


def load_booster(version: ModelVersion) -> LoadedModel:
    model_file = configured_registry().model_file(version)
    return LoadedModel(name=version.name, version=version.version, booster=booster_from(model_file))


class ModelCache:
    """Holds the loaded model; refreshes the alias at most every ``refresh_seconds``.

    If the registry is unreachable on a refresh, the loaded model keeps serving (logged); with no
    model loaded yet the error propagates, so the batch fails and Lambda retries it. With a
    ``challenger_alias``, each refresh that reached the registry for the champion also re-resolves the
    challenger; nothing about the challenger can fail the champion (:func:`refreshed_challenger`).
    """

    def __init__(
        self,
        *,
        name: str,
        alias: str,
        refresh_seconds: float,
        challenger_alias: str | None = None,
        resolve: Callable[[str, str], ModelVersion] = resolve_alias,
        load: Callable[[ModelVersion], LoadedModel] = load_booster,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._name, self._alias, self._refresh = name, alias, refresh_seconds
        self._resolve, self._load, self._clock = resolve, load, clock
        self._challenger_alias = challenger_alias
        self._model: LoadedModel | None = None
        self._challenger: LoadedModel | None = None
        self._checked_at = float("-inf")
        self._lock = threading.Lock()

    @property
    def alias(self) -> str:
        return f"{self._name}@{self._alias}"

    def get(self) -> LoadedModel:
        return self.serving().champion

    def serving(self) -> ServingModels:
        with self._lock:
            if self._model is not None and self._clock() - self._checked_at < self._refresh:
                return ServingModels(self._model, self._challenger)
            try:
                version = self._resolve(self._name, self._alias)
                if self._model is None or self._model.version != version.version:
                    self._model = self._load(version)
                    log.info("serving %s version %s", version.name, version.version)
                champion_refreshed = True
            except Exception:
                if self._model is None:
                    raise
                log.warning(
                    "registry unreachable; keeping %s version %s", self.alias, self._model.version, exc_info=True
                )
                champion_refreshed = False
            # A registry that just failed the champion would only fail (or slow) the challenger's lookup too.
            if self._challenger_alias and champion_refreshed:
                self._challenger = refreshed_challenger(
                    self._challenger,
                    name=self._name,
                    alias=self._challenger_alias,
                    champion=self._model,
                    resolve=self._resolve,
                    load=self._load,
                )
            self._checked_at = self._clock()
            return ServingModels(self._model, self._challenger)
