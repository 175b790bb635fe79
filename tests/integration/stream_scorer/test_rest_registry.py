"""The scorer's cold path against a real ``mlflow server``: alias over REST, model file through the server,
plain xgboost; and what a fresh process imports on that path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import numpy as np
import pytest

from churn_common.schema import FEATURE_COLUMNS
from stream_scorer.model import ModelCache, booster_from
from stream_scorer.model_registry import (
    ModelNotFoundError,
    RegistryUnavailableError,
    RestRegistry,
    registry_for,
)
from tests.conftest import REPO_ROOT, free_port

pytestmark = pytest.mark.integration

# The Lambda image has no MLflow, pandas or scikit-learn (xgboost imports scikit-learn, and through it
# pandas, whenever it is installed): the probe makes them unimportable, as they are there.
ABSENT_FROM_THE_IMAGE = ("mlflow", "pandas", "sklearn")
COLD_START_PROBE = f"""
import json, sys
absent = {ABSENT_FROM_THE_IMAGE!r}
for name in absent:
    sys.modules[name] = None
from stream_scorer.handler import _model_cache
model = _model_cache().get()
print(json.dumps({{"version": model.version, "loaded": sorted(m for m in absent if sys.modules.get(m))}}))
"""


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def features() -> np.ndarray:
    return np.random.default_rng(5).integers(0, 50, size=(64, len(FEATURE_COLUMNS))).astype(np.float32)


def test_alias_resolves_over_rest_and_the_file_loads_into_the_registered_model(
    mlflow_server, served_model, features
) -> None:
    # GIVEN the model registered on a tracking server with alias "staging"
    registry = RestRegistry(mlflow_server.url)
    # WHEN the alias is resolved and the model file fetched through the server
    version = registry.resolve(served_model.name, served_model.alias)
    model_file = registry.model_file(version)
    # THEN it is the registered version, and the booster predicts exactly as the one that was logged
    assert version.version == served_model.version
    assert model_file.name == "model.ubj"
    loaded = booster_from(model_file)
    np.testing.assert_array_equal(loaded.inplace_predict(features), served_model.booster.inplace_predict(features))


def test_http_tracking_uri_selects_the_rest_client() -> None:
    assert isinstance(registry_for("http://mlflow.internal:5000"), RestRegistry)
    assert not isinstance(registry_for("sqlite:///somewhere/mlflow.db"), RestRegistry)


def test_unknown_alias_is_reported_as_a_missing_model(mlflow_server, served_model) -> None:
    with pytest.raises(ModelNotFoundError, match="no-such-alias"):
        RestRegistry(mlflow_server.url).resolve(served_model.name, "no-such-alias")


def test_unreachable_server_is_reported_as_registry_unavailable() -> None:
    # GIVEN a tracking URI where nothing listens
    registry = RestRegistry(f"http://127.0.0.1:{free_port()}")
    # WHEN the alias is resolved THEN the error says the registry is unavailable (a transient fault)
    with pytest.raises(RegistryUnavailableError, match="unreachable"):
        registry.resolve("XGBoostChurnModel", "staging")


def test_promotion_takes_effect_at_the_next_refresh_without_a_redeploy(mlflow_server, served_model) -> None:
    # GIVEN a warm cache serving version A of an alias of its own, re-checked every 60 s
    alias = f"promo-{uuid.uuid4().hex[:8]}"
    mlflow_server.set_alias(served_model.name, alias, served_model.version)
    registry, clock = RestRegistry(mlflow_server.url), Clock()
    cache = ModelCache(
        name=served_model.name,
        alias=alias,
        refresh_seconds=60,
        resolve=registry.resolve,
        load=lambda v: _loaded(registry, v),
        clock=clock,
    )
    assert cache.get().version == served_model.version
    # WHEN a new version is registered and the alias moved to it on the server
    promoted = mlflow_server.register(served_model.booster, name=served_model.name)
    mlflow_server.set_alias(served_model.name, alias, promoted)
    # THEN the cache keeps its model until the refresh interval has passed, then serves the promoted one
    clock.now = 59
    assert cache.get().version == served_model.version
    clock.now = 61
    assert cache.get().version == promoted != served_model.version


def _loaded(registry: RestRegistry, version):  # type: ignore[no-untyped-def]
    from stream_scorer.model import LoadedModel

    return LoadedModel(name=version.name, version=version.version, booster=booster_from(registry.model_file(version)))


def test_cold_start_over_http_needs_neither_mlflow_nor_pandas(mlflow_server, served_model) -> None:
    # GIVEN a fresh process configured like the Lambda (tracking URI of the server), where MLflow, pandas
    # and scikit-learn cannot be imported
    environment = {**os.environ, "MLFLOW_TRACKING_URI": mlflow_server.url, "PYTHONPATH": str(REPO_ROOT)}
    # WHEN it imports the handler and loads the serving model
    completed = subprocess.run(
        [sys.executable, "-c", COLD_START_PROBE],
        env=environment,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    probe = json.loads(completed.stdout.strip().splitlines()[-1])
    # THEN it serves the registered version: nothing on that path needed them
    assert probe["version"] == served_model.version
    assert probe["loaded"] == []
