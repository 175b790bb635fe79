"""Records that pass validation fit their columns on Postgres: a batch holding one with an over-long source
id stores its valid records and rejects that one, instead of failing whole (and being dead-lettered)."""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest
from sqlalchemy import select

from churn_common.database import get_engine, predictions, rejected_records
from stream_scorer.handler import handle
from stream_scorer.model import ModelCache
from tests.factories import fixed_incarnation, kinesis_event

pytestmark = pytest.mark.integration

SOURCE = "0123456789ab"
FEATURES: list[Any] = [8, 0, 38, 0, 4370, 71, 5, 17, 3, 1, 1, 30, 197.64]
TOO_LONG = "source_id: String should have at most 60 characters"


@pytest.fixture
def models(registered_model) -> ModelCache:  # type: ignore[no-untyped-def]
    return ModelCache(name="XGBoostChurnModel", alias="staging", refresh_seconds=60)


def payload(source_id: str, row: int, *, customer_value: float = 197.64) -> bytes:
    event_ms = int(time.time() * 1000)
    return orjson.dumps([1, source_id, row, event_ms, *FEATURES[:-1], customer_value, 0])


def test_a_batch_with_an_over_long_source_id_stores_the_valid_records_and_rejects_that_one(
    database_url: str, models: ModelCache
) -> None:
    # GIVEN one aggregated batch: 20 valid records, then a 64-character source id with a 19-digit row (a
    # record id of 84 characters, over the column's 80), a 61-character one, and a customer value of 1e308
    good = [payload(SOURCE, row) for row in range(1, 21)]
    bad = [payload("s" * 64, 10**18), payload("s" * 61, 2**63 - 1), payload(SOURCE, 21, customer_value=1e308)]
    event = kinesis_event([*good[:10], *bad, *good[10:]])
    engine = get_engine(database_url)
    # WHEN handled
    assert handle(event, models=models, engine=engine, incarnations=fixed_incarnation) == {"batchItemFailures": []}
    # THEN every valid record is stored, and each bad one is rejected with its reason
    with engine.connect() as connection:
        stored = connection.execute(select(predictions.c.record_id)).scalars().all()
        rejected = connection.execute(
            select(rejected_records.c.reason, rejected_records.c.source_id).order_by(rejected_records.c.event_id)
        ).all()
    assert sorted(stored) == sorted(f"{SOURCE}:{row}" for row in range(1, 21))
    assert [tuple(r) for r in rejected] == [
        (TOO_LONG, None),
        (TOO_LONG, None),
        ("customer_value: Input should be less than or equal to 1000000", SOURCE),
    ]
