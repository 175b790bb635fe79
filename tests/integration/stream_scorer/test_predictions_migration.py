"""A database created before shadow scoring gets the challenger columns on first use; its rows keep NULL there,
and the scorer writes to it as to a new one."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Column, Index, MetaData, Table, create_engine, inspect, select

from churn_common.database import dispose_engine, engine_url, get_engine, predictions
from churn_common.schema import FEATURE_COLUMNS
from stream_scorer.handler import handle
from stream_scorer.model import ModelCache
from tests.factories import TYPICAL_FEATURES, customer_record, encoded, fixed_incarnation, kinesis_event

pytestmark = pytest.mark.integration

SHADOW_COLUMNS = ("challenger_version", "challenger_probability")


def old_predictions_table(metadata: MetaData) -> Table:
    """``predictions`` as it was defined before the challenger columns."""
    columns = [
        Column(c.name, c.type, primary_key=c.primary_key, nullable=c.nullable)
        for c in predictions.columns
        if c.name not in SHADOW_COLUMNS
    ]
    indexes = [Index(index.name, *(c.name for c in index.columns)) for index in predictions.indexes]
    return Table("predictions", metadata, *columns, *indexes)


@pytest.fixture
def old_database(database_url: str) -> Callable[..., str]:
    """A database holding ``predictions`` in its old layout, with the rows given; returns its URL."""

    def create(rows: list[dict[str, Any]]) -> str:
        metadata = MetaData()
        table = old_predictions_table(metadata)
        engine = create_engine(engine_url(database_url))
        try:
            metadata.create_all(engine)
            with engine.begin() as connection:
                connection.execute(table.insert(), rows)
        finally:
            engine.dispose()
        return database_url

    return create


def old_row(row: int) -> dict[str, Any]:
    now = datetime.now(tz=UTC)
    return {
        "event_id": f"1/shardId-000000000000:{row}:0",
        "record_id": f"old-{row}",
        "source_id": "old-source",
        "row": row,
        "event_time": now,
        "arrival_time": now,
        "scored_at": now,
        "model_name": "XGBoostChurnModel",
        "model_version": "1",
        "churn_probability": 0.25,
        "churn_prediction": 0,
        "label": 0,
        **{name: TYPICAL_FEATURES[name] for name in FEATURE_COLUMNS},
    }


def test_old_database_gets_the_challenger_columns_and_old_rows_read_null(old_database, registered_model) -> None:
    # GIVEN a database created by the old table definition, holding two predictions
    url = old_database([old_row(1), old_row(2)])
    dispose_engine(url)
    # WHEN the pipeline opens it
    engine = get_engine(url)
    # THEN both columns exist, nullable, and the old rows read back NULL there
    present = {column["name"]: column for column in inspect(engine).get_columns("predictions")}
    assert all(present[name]["nullable"] for name in SHADOW_COLUMNS)
    with engine.connect() as connection:
        stored = connection.execute(
            select(predictions.c.record_id, predictions.c.challenger_version, predictions.c.challenger_probability)
        ).all()
    assert sorted(stored) == [("old-1", None, None), ("old-2", None, None)]
    # AND the scorer writes new records into it beside the old ones
    models = ModelCache(name="XGBoostChurnModel", alias="staging", refresh_seconds=60)
    event = kinesis_event(encoded([customer_record(row=i) for i in range(1, 6)]))
    handle(event, models=models, engine=engine, incarnations=fixed_incarnation)
    with engine.connect() as connection:
        assert len(connection.execute(select(predictions.c.event_id)).all()) == 7
