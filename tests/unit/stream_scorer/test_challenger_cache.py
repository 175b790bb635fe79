"""The challenger's refresh policy in the model cache, over an in-memory registry: when the registry is asked,
and that nothing about the challenger fails the champion."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pytest
import xgboost

from churn_common.schema import FEATURE_COLUMNS
from stream_scorer.model import LoadedModel, ModelCache, ModelVersion
from stream_scorer.model_registry import ModelNotFoundError, RegistryUnavailableError

NAME = "M"
CHAMPION_ALIAS = "staging"
CHALLENGER_ALIAS = "challenger"
REFRESH_SECONDS = 60.0
UNREADABLE = "unreadable"


def tiny_booster(n_features: int = len(FEATURE_COLUMNS)) -> xgboost.Booster:
    rng = np.random.default_rng(n_features)
    features = rng.random((32, n_features), dtype=np.float32)
    return xgboost.train({"objective": "binary:logistic"}, xgboost.DMatrix(features, label=features[:, 0] > 0.5), 2)


@dataclass
class FakeRegistry:
    """Aliases to versions (or to the error a lookup raises); records every request the cache makes."""

    aliases: dict[str, str | Exception]
    boosters: dict[str, xgboost.Booster] = field(default_factory=dict)
    resolved: list[str] = field(default_factory=list)
    loaded: list[str] = field(default_factory=list)

    def resolve(self, name: str, alias: str) -> ModelVersion:
        self.resolved.append(alias)
        target = self.aliases.get(alias, ModelNotFoundError(f"{name}@{alias}"))
        if isinstance(target, Exception):
            raise target
        return ModelVersion(name=name, version=target, source=f"models:/{name}/{target}")

    def load(self, version: ModelVersion) -> LoadedModel:
        self.loaded.append(version.version)
        if version.version == UNREADABLE:
            raise xgboost.core.XGBoostError("unreadable model file")
        booster = self.boosters.get(version.version) or tiny_booster()
        return LoadedModel(name=version.name, version=version.version, booster=booster)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@dataclass
class CacheUnderTest:
    cache: ModelCache
    registry: FakeRegistry
    clock: Clock


@pytest.fixture
def make_cache() -> Callable[..., CacheUnderTest]:
    def factory(*, challenger: str | Exception | None = None, challenger_alias: str | None = CHALLENGER_ALIAS):
        aliases: dict[str, str | Exception] = {CHAMPION_ALIAS: "1"}
        if challenger is not None:
            aliases[CHALLENGER_ALIAS] = challenger
        registry, clock = FakeRegistry(aliases=aliases), Clock()
        cache = ModelCache(
            name=NAME,
            alias=CHAMPION_ALIAS,
            refresh_seconds=REFRESH_SECONDS,
            challenger_alias=challenger_alias,
            resolve=registry.resolve,
            load=registry.load,
            clock=clock,
        )
        return CacheUnderTest(cache=cache, registry=registry, clock=clock)

    return factory


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_challenger_is_looked_up_only_when_the_champion_is(make_cache) -> None:
    # GIVEN a cache with a challenger alias set on version 2
    under = make_cache(challenger="2")
    # WHEN many batches are served within one refresh interval, then one after it
    first = [under.cache.serving() for _ in range(50)]
    under.clock.now = REFRESH_SECONDS + 1
    under.cache.serving()
    # THEN every batch had both models, and the registry was asked once per alias per refresh, loads once
    assert {(s.champion.version, s.challenger.version if s.challenger else None) for s in first} == {("1", "2")}
    assert under.registry.resolved == [CHAMPION_ALIAS, CHALLENGER_ALIAS] * 2
    assert under.registry.loaded == ["1", "2"]


def test_unset_alias_means_no_challenger_and_no_load(make_cache) -> None:
    under = make_cache(challenger=None)
    assert under.cache.serving().challenger is None
    assert under.registry.loaded == ["1"]


def test_cache_without_a_challenger_alias_never_asks_for_one(make_cache) -> None:
    under = make_cache(challenger="2", challenger_alias=None)
    assert under.cache.serving().challenger is None
    assert under.registry.resolved == [CHAMPION_ALIAS]


def test_unloadable_challenger_warns_once_per_refresh_and_the_champion_serves(make_cache, caplog) -> None:
    # GIVEN the challenger alias on a version whose model file cannot be read
    under = make_cache(challenger=UNREADABLE)
    # WHEN batches are served within one refresh interval
    with caplog.at_level(logging.WARNING):
        served = [under.cache.serving() for _ in range(5)]
    # THEN the champion serves every one alone, with one warning naming the version, and one load attempt
    assert [(s.champion.version, s.challenger) for s in served] == [("1", None)] * 5
    assert len(warnings_of(caplog)) == 1
    assert UNREADABLE in warnings_of(caplog)[0]
    assert under.registry.loaded == ["1", UNREADABLE]
    # AND the next refresh tries again, and loads a fixed version
    under.registry.aliases[CHALLENGER_ALIAS] = "3"
    under.clock.now = REFRESH_SECONDS + 1
    assert under.cache.serving().challenger.version == "3"


def test_challenger_with_other_features_is_not_used(make_cache, caplog) -> None:
    # GIVEN a challenger trained on one feature fewer than the records carry
    under = make_cache(challenger="2")
    under.registry.boosters["2"] = tiny_booster(len(FEATURE_COLUMNS) - 1)
    # WHEN served THEN the champion serves alone, and the warning says why
    with caplog.at_level(logging.WARNING):
        assert under.cache.serving().challenger is None
    assert "cannot be used" in warnings_of(caplog)[0]


def test_alias_on_the_champion_version_is_no_challenger(make_cache) -> None:
    # GIVEN a promotion: both aliases name version 1
    under = make_cache(challenger="1")
    # WHEN served THEN nothing is scored twice, nothing loaded twice
    assert under.cache.serving().challenger is None
    assert under.registry.loaded == ["1"]


def test_moved_and_removed_alias_take_effect_at_the_next_refresh(make_cache) -> None:
    under = make_cache(challenger="2")
    assert under.cache.serving().challenger.version == "2"
    # GIVEN the alias moved to version 3
    under.registry.aliases[CHALLENGER_ALIAS] = "3"
    under.clock.now = REFRESH_SECONDS - 1
    assert under.cache.serving().challenger.version == "2"
    under.clock.now = REFRESH_SECONDS + 1
    assert under.cache.serving().challenger.version == "3"
    # AND then deleted
    del under.registry.aliases[CHALLENGER_ALIAS]
    under.clock.now = 2 * REFRESH_SECONDS + 2
    assert under.cache.serving().challenger is None


def test_registry_down_at_a_refresh_keeps_both_models_and_asks_once(make_cache) -> None:
    # GIVEN both models loaded, then the registry unreachable at the next refresh
    under = make_cache(challenger="2")
    under.cache.serving()
    under.registry.aliases[CHAMPION_ALIAS] = RegistryUnavailableError("down")
    under.registry.aliases[CHALLENGER_ALIAS] = RegistryUnavailableError("down")
    under.clock.now = REFRESH_SECONDS + 1
    # WHEN served THEN both keep serving, and the failed champion lookup spared the challenger's
    serving = under.cache.serving()
    assert (serving.champion.version, serving.challenger.version) == ("1", "2")
    assert under.registry.resolved == [CHAMPION_ALIAS, CHALLENGER_ALIAS, CHAMPION_ALIAS]


def test_challenger_lookup_failing_alone_keeps_the_challenger(make_cache) -> None:
    under = make_cache(challenger="2")
    under.cache.serving()
    under.registry.aliases[CHALLENGER_ALIAS] = RegistryUnavailableError("down")
    under.clock.now = REFRESH_SECONDS + 1
    serving = under.cache.serving()
    assert (serving.champion.version, serving.challenger.version) == ("1", "2")


def test_cold_start_without_a_loadable_challenger_still_serves(make_cache) -> None:
    # GIVEN a fresh container whose challenger lookup fails THEN the first batch is scored by the champion
    under = make_cache(challenger=RegistryUnavailableError("challenger lookup timed out"))
    serving = under.cache.serving()
    assert (serving.champion.version, serving.challenger) == ("1", None)
