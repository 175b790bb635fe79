from __future__ import annotations

from collections.abc import Callable

import pytest
import xgboost

from stream_scorer.model import LoadedModel, ModelCache, ModelVersion


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def registry() -> dict[str, str | Exception]:
    return {"version": "1"}


@pytest.fixture
def make_cache(registry: dict[str, str | Exception]) -> Callable[..., tuple[ModelCache, Clock, list[str]]]:
    """A cache over an in-memory registry: this tests the refresh policy, not MLflow."""

    def factory(refresh: float = 60.0) -> tuple[ModelCache, Clock, list[str]]:
        clock, loads = Clock(), []

        def resolve(name: str, alias: str) -> ModelVersion:
            value = registry["version"]
            if isinstance(value, Exception):
                raise value
            return ModelVersion(name=name, version=value, source=f"models:/m-{value}")

        def load(version: ModelVersion) -> LoadedModel:
            loads.append(version.version)
            if version.version == "broken":
                raise xgboost.core.XGBoostError("unreadable model file")
            return LoadedModel(name=version.name, version=version.version, booster=xgboost.Booster())

        cache = ModelCache(name="M", alias="staging", refresh_seconds=refresh, resolve=resolve, load=load, clock=clock)
        return cache, clock, loads

    return factory


def test_model_is_loaded_once_and_reused_within_refresh_interval(make_cache, registry) -> None:
    cache, clock, loads = make_cache(refresh=60)
    assert cache.get().version == "1"
    clock.now = 59
    registry["version"] = "2"
    assert cache.get().version == "1"
    assert loads == ["1"]


def test_alias_move_takes_effect_after_refresh_interval(make_cache, registry) -> None:
    cache, clock, loads = make_cache(refresh=60)
    cache.get()
    # GIVEN the alias moved to version 2
    registry["version"] = "2"
    # WHEN the refresh interval has passed
    clock.now = 61
    # THEN version 2 serves, loaded once
    assert cache.get().version == "2"
    assert cache.get().version == "2"
    assert loads == ["1", "2"]


def test_unreachable_registry_keeps_serving_loaded_model(make_cache, registry) -> None:
    cache, clock, _ = make_cache(refresh=1)
    cache.get()
    registry["version"] = ConnectionError("registry down")
    clock.now = 5
    assert cache.get().version == "1"


def test_unreachable_registry_at_cold_start_fails_the_batch(make_cache, registry) -> None:
    cache, _, _ = make_cache()
    registry["version"] = ConnectionError("registry down")
    with pytest.raises(ConnectionError):
        cache.get()


def test_new_version_that_cannot_be_loaded_leaves_the_serving_one_in_place(make_cache, registry) -> None:
    # GIVEN version 1 serving, and the alias moved to a version whose model file cannot be loaded
    cache, clock, loads = make_cache(refresh=1)
    cache.get()
    registry["version"] = "broken"
    clock.now = 5
    # WHEN the alias is re-checked THEN version 1 keeps serving, and the next check tries again
    assert cache.get().version == "1"
    registry["version"] = "2"
    clock.now = 10
    assert cache.get().version == "2"
    assert loads == ["1", "broken", "2"]
