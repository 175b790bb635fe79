"""Kinesis records whose data is not base64, through the handler into real databases (SQLite and
Postgres): each is rejected on its own with its raw text, and the rest of its batch is scored."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from churn_common.database import get_engine, predictions, rejected_records
from stream_scorer.handler import handle
from stream_scorer.kinesis_event import UNDECODABLE_DATA
from stream_scorer.model import ModelCache
from tests.factories import FIXED_INCARNATION, customer_record, encoded, fixed_incarnation, kinesis_event

pytestmark = pytest.mark.integration

SHARD = "shardId-000000000003"
NOT_BASE64 = {11: "abc", 14: '[1,"abc",1,5,1,0,38,0,4370,71,5,17,3,1,1,30,197.64,0]'}  # padding; not base64 at all


@pytest.fixture
def models(registered_model) -> ModelCache:  # type: ignore[no-untyped-def]
    return ModelCache(name="XGBoostChurnModel", alias="staging", refresh_seconds=60)


def test_undecodable_data_rejects_that_record_alone_and_the_batch_is_scored(
    database_url: str, models: ModelCache, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN six plain records (sequence numbers 10..15) and an aggregate of five more (16), where two plain
    # records carry data that is not base64: one badly padded, one raw JSON that was never encoded
    plain = encoded([customer_record(row=i) for i in range(1, 7)])
    event = kinesis_event(plain, aggregate=False, shard_id=SHARD, first_sequence=10)
    for sequence, data in NOT_BASE64.items():
        event["Records"][sequence - 10]["kinesis"]["data"] = data
    packed = encoded([customer_record(row=i) for i in range(7, 12)])
    (aggregate,) = kinesis_event(packed, shard_id=SHARD, first_sequence=16)["Records"]
    event["Records"].append(aggregate)
    engine = get_engine(database_url)
    # WHEN handled, and handled again (a redelivery)
    first = handle(event, models=models, engine=engine, incarnations=fixed_incarnation)
    second = handle(event, models=models, engine=engine, incarnations=fixed_incarnation)
    # THEN the batch succeeds both times
    assert first == second == {"batchItemFailures": []}
    # AND the nine decodable records are scored once each
    with engine.connect() as connection:
        scored = connection.execute(select(predictions.c.row).order_by(predictions.c.row)).scalars().all()
        rejected = connection.execute(
            select(
                rejected_records.c.event_id,
                rejected_records.c.reason,
                rejected_records.c.payload,
                rejected_records.c.source_id,
                rejected_records.c.stage,
            ).order_by(rejected_records.c.event_id)
        ).all()
        rejected_count = connection.execute(select(func.count()).select_from(rejected_records)).scalar_one()
    assert scored == [1, 3, 4, 6, 7, 8, 9, 10, 11]
    # AND each undecodable record is rejected once, with the reason and the data exactly as it arrived (the
    # raw JSON one still traced to its source by the source id it holds)
    assert rejected_count == 2
    assert [tuple(row) for row in rejected] == [
        (f"{FIXED_INCARNATION}/{SHARD}:11:0", UNDECODABLE_DATA, NOT_BASE64[11], None, "stream_scorer"),
        (f"{FIXED_INCARNATION}/{SHARD}:14:0", UNDECODABLE_DATA, NOT_BASE64[14], "abc", "stream_scorer"),
    ]
    # AND the batch's metrics count them as rejected
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if '"batch scored"' in x]
    assert [(line["records_in"], line["scored"], line["rejected"]) for line in lines] == [(11, 9, 2), (11, 0, 2)]


def test_a_batch_of_undecodable_data_only_is_rejected_without_needing_the_model(database_url: str) -> None:
    # GIVEN a model cache that must not be asked (no registry behind it)
    def unreachable(name: str, alias: str):  # type: ignore[no-untyped-def]
        raise AssertionError("the model was loaded for a batch with nothing to score")

    models = ModelCache(name="XGBoostChurnModel", alias="staging", refresh_seconds=60, resolve=unreachable)
    event = kinesis_event([b"x", b"y"], aggregate=False)
    for record in event["Records"]:
        record["kinesis"]["data"] = "%%%"
    # WHEN handled THEN both are rejected and the batch succeeds
    assert handle(event, models=models, engine=get_engine(database_url), incarnations=fixed_incarnation) == {
        "batchItemFailures": []
    }
    with get_engine(database_url).connect() as connection:
        reasons = connection.execute(select(rejected_records.c.reason)).scalars().all()
    assert reasons == [UNDECODABLE_DATA, UNDECODABLE_DATA]
