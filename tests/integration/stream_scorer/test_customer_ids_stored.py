"""The scorer stores each record's customer id (NULL for a record without one) on both write paths: Postgres's
staged COPY and SQLite's JSON document; and a database from before customer ids gains the columns and index."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import orjson
import pytest
import xgboost
from sqlalchemy import Column, Index, MetaData, Table, create_engine, inspect, select

from churn_common.database import dispose_engine, engine_url, get_engine, labels, predictions
from churn_common.schema import FEATURE_COLUMNS
from stream_scorer.handler import handle
from stream_scorer.model import LoadedModel, ServingModels
from tests.factories import fixed_incarnation, kinesis_event

pytestmark = pytest.mark.integration

SOURCE = "a1b2c3d4e5f6"
# One record's wire tuple up to its label, written out by hand (row and customer id follow per test).
FEATURES = [8, 0, 38, 0, 4370, 71, 5, 17, 3, 1, 1, 30, 197.64, 0]
NEW_COLUMNS = {"predictions": "customer_id", "labels": "customer_id"}
NEW_INDEX = "ix_predictions_customer_scored_at"


def payload(row: int, *customer_id: str | None) -> bytes:
    return orjson.dumps([1, SOURCE, row, 1764139800123 + row, *FEATURES, *customer_id])


class FixedModels:
    """Serves one small real booster, as the model cache would, without a registry."""

    def __init__(self) -> None:
        rng = np.random.default_rng(3)
        features = rng.integers(0, 5, size=(200, len(FEATURE_COLUMNS))).astype(np.float32)
        target = (features[:, 0] >= 3).astype(int)
        booster = xgboost.train({"objective": "binary:logistic"}, xgboost.DMatrix(features, label=target), 3)
        self._serving = ServingModels(champion=LoadedModel(name="XGBoostChurnModel", version="1", booster=booster))

    def serving(self) -> ServingModels:
        return self._serving


@pytest.fixture(scope="module")
def models() -> FixedModels:
    return FixedModels()


def stored_customer_ids(engine: Any) -> dict[str, str | None]:
    with engine.connect() as connection:
        rows = connection.execute(select(predictions.c.record_id, predictions.c.customer_id)).all()
    return {row.record_id: row.customer_id for row in rows}


@pytest.mark.parametrize(
    "customer_ids",
    [
        [("C1",), ("C2",), ("C3",)],
        [(), (), ()],
        [("C1",), (), (None,)],
    ],
    ids=["all-with", "all-without", "mixed"],
)
def test_each_record_is_stored_with_its_customer_id_or_null(  # type: ignore[no-untyped-def]
    database_url, models, customer_ids
) -> None:
    # GIVEN a batch of records with and without customer ids, on SQLite and on Postgres
    engine = get_engine(database_url)
    event = kinesis_event([payload(row, *ids) for row, ids in enumerate(customer_ids, start=1)])
    # WHEN the scorer handles it
    handle(event, models=models, engine=engine, incarnations=fixed_incarnation)  # type: ignore[arg-type]
    # THEN every record is stored with its own customer id, NULL where it had none
    expected = {f"{SOURCE}:{row}": (ids[0] if ids else None) for row, ids in enumerate(customer_ids, start=1)}
    assert stored_customer_ids(engine) == expected


def old_table(metadata: MetaData, table: Table) -> Table:
    """``table`` as it was defined before customer ids."""
    columns = [
        Column(c.name, c.type, primary_key=c.primary_key, nullable=c.nullable)
        for c in table.columns
        if c.name != NEW_COLUMNS[table.name]
    ]
    indexes = [
        Index(index.name, *(c.name for c in index.columns))
        for index in table.indexes
        if NEW_COLUMNS[table.name] not in {c.name for c in index.columns}
    ]
    return Table(table.name, metadata, *columns, *indexes)


@pytest.fixture
def old_database(database_url: str) -> Callable[[], str]:
    def create() -> str:
        metadata = MetaData()
        old_table(metadata, predictions)
        old_table(metadata, labels)
        engine = create_engine(engine_url(database_url))
        try:
            metadata.create_all(engine)
        finally:
            engine.dispose()
        dispose_engine(database_url)
        return database_url

    return create


def test_a_database_from_before_customer_ids_gains_the_columns_and_the_index(old_database, models) -> None:  # type: ignore[no-untyped-def]
    # GIVEN a database whose predictions and labels tables have no customer id
    url = old_database()
    assert "customer_id" not in {c["name"] for c in inspect(create_engine(engine_url(url))).get_columns("predictions")}
    # WHEN the pipeline opens it
    engine = get_engine(url)
    # THEN both tables have the nullable column and predictions the (customer_id, scored_at) index
    inspector = inspect(engine)
    for table in NEW_COLUMNS:
        present = {column["name"]: column for column in inspector.get_columns(table)}
        assert present["customer_id"]["nullable"], table
    indexes = {index["name"]: index["column_names"] for index in inspector.get_indexes("predictions")}
    assert indexes[NEW_INDEX] == ["customer_id", "scored_at"]
    # AND the scorer stores customer ids into it
    handle(kinesis_event([payload(1, "C1"), payload(2)]), models=models, engine=engine, incarnations=fixed_incarnation)  # type: ignore[arg-type]
    assert stored_customer_ids(engine) == {f"{SOURCE}:1": "C1", f"{SOURCE}:2": None}
