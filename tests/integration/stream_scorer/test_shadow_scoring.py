"""Shadow scoring against a real ``mlflow server`` (REST, as the Lambda) and real databases: the challenger's
probabilities beside the champion's, NULL when there is none or it cannot be loaded, a moved alias followed
at the next refresh."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
import xgboost
from sqlalchemy import select

from churn_common.database import get_engine, predictions
from churn_common.schema import FEATURE_COLUMNS
from stream_scorer.handler import handle
from stream_scorer.model import ModelCache
from tests.factories import customer_record, encoded, fixed_incarnation, kinesis_event

pytestmark = pytest.mark.integration

REFRESH_SECONDS = 60.0
BATCH_RECORDS = 40
UNREADABLE_MODEL = b"this is not an xgboost model"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def challenger_booster(*, column: str, threshold: int) -> xgboost.Booster:
    """A real model that learnt churn from one column only: it disagrees with the served model on some records."""
    rng = np.random.default_rng(23)
    features = rng.integers(0, 12, size=(600, len(FEATURE_COLUMNS))).astype(np.float32)
    labels = (features[:, FEATURE_COLUMNS.index(column)] >= threshold).astype(int)
    matrix = xgboost.DMatrix(features, label=labels, feature_names=list(FEATURE_COLUMNS))
    return xgboost.train({"objective": "binary:logistic", "max_depth": 3}, matrix, 8)


def registered_booster(name: str, version: str) -> xgboost.Booster:
    """The version as MLflow itself loads it from the server: the reference the stored values are held to."""
    import mlflow.xgboost

    return mlflow.xgboost.load_model(f"models:/{name}/{version}")


def register_unusable(name: str, *, model_file: bytes | None) -> str:
    """A version whose artifacts hold ``model_file`` as its ``model.ubj`` (or no model file at all)."""
    import mlflow
    from mlflow import MlflowClient

    with mlflow.start_run() as run:
        if model_file is None:
            mlflow.log_text("no model here", "model/README.txt")
        else:
            mlflow.log_text(model_file.decode(), "model/model.ubj")
        source = mlflow.get_artifact_uri("model")
    return str(MlflowClient().create_model_version(name, source=source, run_id=run.info.run_id).version)


@pytest.fixture
def rest_registry(served_model, mlflow_server, env) -> Iterator[Any]:  # type: ignore[no-untyped-def]
    """This process pointed at the server, as the Lambda is (the scorer's settings and MLflow's client alike:
    MLflow writes its URI back to the environment), with the session's model served there."""
    import mlflow

    saved = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    # The environment first: its values from before the test are what the env fixture puts back.
    env(MLFLOW_TRACKING_URI=mlflow_server.url, MLFLOW_REGISTRY_URI=mlflow_server.url)
    mlflow.set_tracking_uri(mlflow_server.url)
    mlflow.set_registry_uri(mlflow_server.url)
    yield served_model
    mlflow.set_tracking_uri(saved[0])
    mlflow.set_registry_uri(saved[1])


@pytest.fixture
def challenger_alias(rest_registry, mlflow_server) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """An alias of this test's own (other tests share the server), removed afterwards."""
    from mlflow import MlflowClient

    alias = f"challenger-{uuid.uuid4().hex[:8]}"
    yield alias
    client = MlflowClient(mlflow_server.url, mlflow_server.url)
    client.delete_registered_model_alias(rest_registry.name, alias)


@pytest.fixture
def point_challenger(rest_registry, mlflow_server, challenger_alias) -> Callable[..., str]:  # type: ignore[no-untyped-def]
    """Registers a new version (``booster``, else artifacts with ``model_file`` as the model file) and moves
    the challenger alias to it; returns the version."""

    def point(booster: xgboost.Booster | None = None, *, model_file: bytes | None = None) -> str:
        if booster is not None:
            version = mlflow_server.register(booster, name=rest_registry.name)
        else:
            version = register_unusable(rest_registry.name, model_file=model_file)
        mlflow_server.set_alias(rest_registry.name, challenger_alias, version)
        return version

    return point


@pytest.fixture(params=[UNREADABLE_MODEL, None], ids=["unreadable-file", "no-model-file"])
def unusable_challenger(request: pytest.FixtureRequest, point_challenger: Callable[..., str]) -> str:
    return point_challenger(model_file=request.param)


@pytest.fixture
def shadow_cache(rest_registry, challenger_alias) -> Callable[..., ModelCache]:  # type: ignore[no-untyped-def]
    def make(*, clock: Clock | None = None) -> ModelCache:
        return ModelCache(
            name=rest_registry.name,
            alias=rest_registry.alias,
            refresh_seconds=REFRESH_SECONDS,
            challenger_alias=challenger_alias,
            clock=clock or Clock(),
        )

    return make


@pytest.fixture
def handle_batch(database_url: str) -> Callable[..., list[Any]]:
    """Handles a batch of new records (rows ``first_row``...) and returns their stored rows, by row."""

    def run(models: ModelCache, *, first_row: int = 1) -> list[Any]:
        records = [
            customer_record(row=first_row + i, call_failure=i % 12, complains=i % 2, status=1 + i % 2)
            for i in range(BATCH_RECORDS)
        ]
        event = kinesis_event(encoded(records), shard_id=f"shardId-{first_row:012d}")
        engine = get_engine(database_url)
        handle(event, models=models, engine=engine, incarnations=fixed_incarnation)
        rows = range(first_row, first_row + BATCH_RECORDS)
        with engine.connect() as connection:
            query = select(predictions).where(predictions.c.row.in_(rows)).order_by(predictions.c.row)
            stored = connection.execute(query).all()
        assert len(stored) == BATCH_RECORDS
        return stored

    return run


def own_probabilities(booster: xgboost.Booster, rows: list[Any]) -> list[float]:
    """What the model itself gives for the stored records' features (xgboost's DMatrix path, not the scorer's)."""
    features = np.array([[getattr(row, name) for name in FEATURE_COLUMNS] for row in rows], dtype=np.float32)
    return booster.predict(xgboost.DMatrix(features, feature_names=booster.feature_names)).tolist()


def test_batch_stores_the_challengers_own_probabilities_beside_the_champions(
    rest_registry, point_challenger, shadow_cache, handle_batch, capsys
) -> None:
    # GIVEN a second registered version, which learnt churn from complaints only, under the challenger alias
    name = rest_registry.name
    version = point_challenger(challenger_booster(column="complains", threshold=1))
    # WHEN a batch is scored
    rows = handle_batch(shadow_cache())
    # THEN every row names both versions; each probability is its own model's on that row's features
    assert {(r.model_version, r.challenger_version) for r in rows} == {(rest_registry.version, version)}
    challenger = registered_booster(name, version)
    champion = registered_booster(name, rest_registry.version)
    stored_challenger = [r.challenger_probability for r in rows]
    assert stored_challenger == pytest.approx(own_probabilities(challenger, rows), rel=1e-6)
    assert [r.churn_probability for r in rows] == pytest.approx(own_probabilities(champion, rows), rel=1e-6)
    # AND the two models do disagree: the columns are not copies of each other
    assert stored_challenger != pytest.approx([r.churn_probability for r in rows], abs=1e-3)
    # AND the champion alone decides the prediction
    assert all(r.churn_prediction == int(r.churn_probability >= 0.5) for r in rows)
    # AND the batch's log line names both versions
    (logged,) = [json.loads(x) for x in capsys.readouterr().out.splitlines() if '"batch scored"' in x]
    assert (logged["model_version"], logged["challenger_version"]) == (rest_registry.version, version)


def test_without_a_challenger_alias_the_columns_are_null(rest_registry, shadow_cache, handle_batch) -> None:
    # GIVEN no version under the challenger alias WHEN a batch is scored
    rows = handle_batch(shadow_cache())
    # THEN it is scored by the champion, and the challenger columns are NULL
    assert {(r.model_version, r.challenger_version, r.challenger_probability) for r in rows} == {
        (rest_registry.version, None, None)
    }


def test_unusable_challenger_leaves_the_champion_scoring_alone(
    rest_registry, unusable_challenger, shadow_cache, handle_batch, caplog
) -> None:
    # GIVEN the challenger alias on a version whose model file is unreadable or missing
    version = unusable_challenger
    models = shadow_cache()
    # WHEN two batches are scored within one refresh interval
    with caplog.at_level(logging.WARNING, logger="stream_scorer"):
        stored = [*handle_batch(models, first_row=1), *handle_batch(models, first_row=101)]
    # THEN every record is stored, scored by the champion, the challenger columns NULL
    assert {(r.model_version, r.challenger_version, r.challenger_probability) for r in stored} == {
        (rest_registry.version, None, None)
    }
    champion = registered_booster(rest_registry.name, rest_registry.version)
    assert [r.churn_probability for r in stored] == pytest.approx(own_probabilities(champion, stored), rel=1e-6)
    # AND one warning for the refresh names the version
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert f"version {version} cannot be used" in warnings[0]


def test_moved_challenger_alias_is_followed_at_the_next_refresh(
    rest_registry, point_challenger, shadow_cache, handle_batch
) -> None:
    # GIVEN a warm scorer shadow-scoring with version A
    name = rest_registry.name
    first = point_challenger(challenger_booster(column="complains", threshold=1))
    clock = Clock()
    models = shadow_cache(clock=clock)
    assert {r.challenger_version for r in handle_batch(models, first_row=1)} == {first}
    # WHEN the alias moves to version B, which learnt from the call failures
    second = point_challenger(challenger_booster(column="call_failure", threshold=6))
    # THEN batches keep version A until the refresh interval has passed, then carry B's own probabilities
    clock.now = REFRESH_SECONDS - 1
    assert {r.challenger_version for r in handle_batch(models, first_row=101)} == {first}
    clock.now = REFRESH_SECONDS + 1
    rows = handle_batch(models, first_row=201)
    assert {r.challenger_version for r in rows} == {second}
    expected = own_probabilities(registered_booster(name, second), rows)
    assert [r.challenger_probability for r in rows] == pytest.approx(expected, rel=1e-6)
