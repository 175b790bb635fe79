"""The scorer handler against a real MLflow registry and real databases (SQLite and Postgres)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from churn_common.database import dispose_engine, get_engine, predictions, rejected_records
from stream_scorer.handler import handle
from stream_scorer.model import ModelCache
from tests.factories import customer_record, encoded, kinesis_event

pytestmark = pytest.mark.integration


@pytest.fixture
def models(registered_model) -> ModelCache:  # type: ignore[no-untyped-def]
    return ModelCache(name="XGBoostChurnModel", alias="staging", refresh_seconds=60)


@pytest.fixture
def count_rows(database_url: str) -> Callable[..., int]:
    engine = get_engine(database_url)

    def count(table=predictions, *, distinct_records: bool = False) -> int:  # type: ignore[no-untyped-def]
        column = func.count(func.distinct(table.c.record_id)) if distinct_records else func.count()
        with engine.connect() as connection:
            return int(connection.execute(select(column).select_from(table)).scalar_one())

    return count


def test_batch_is_scored_once_and_redelivery_changes_nothing(
    database_url, models, registered_model, count_rows
) -> None:
    # GIVEN an aggregated event of 300 records
    event = kinesis_event(encoded([customer_record(row=i) for i in range(1, 301)]))
    engine = get_engine(database_url)
    # WHEN it is handled twice (Lambda redelivers after a crash before the checkpoint)
    first = handle(event, models=models, engine=engine)
    second = handle(event, models=models, engine=engine)
    # THEN every record is stored once, with the serving model version and a probability
    assert first == second == {"batchItemFailures": []}
    assert count_rows() == 300
    with engine.connect() as connection:
        versions = set(connection.execute(select(predictions.c.model_version).distinct()).scalars())
        probabilities = connection.execute(select(predictions.c.churn_probability)).scalars().all()
    assert versions == {registered_model.version}
    assert all(0.0 <= p <= 1.0 for p in probabilities)


def test_poison_records_are_rejected_and_the_rest_scored(database_url, models, count_rows) -> None:
    # GIVEN a batch with an undecodable payload, an unknown version and an invalid value in the middle
    good = encoded([customer_record(row=i) for i in range(1, 11)])
    poison = [b"\x00garbage", b"[9,1]", b'[1,"abc",1,5,1,0,38,0,4370,71,5,17,7,1,1,30,197.64,0]']
    event = kinesis_event([*good[:5], *poison, *good[5:]])
    engine = get_engine(database_url)
    # WHEN handled (twice: redelivery must not duplicate the rejections either)
    handle(event, models=models, engine=engine)
    handle(event, models=models, engine=engine)
    # THEN the good ones are scored, each poison record is rejected once with its reason
    assert count_rows() == 10
    with engine.connect() as connection:
        rejected = connection.execute(select(rejected_records.c.reason, rejected_records.c.source_id)).all()
    assert len(rejected) == 3
    reasons = " | ".join(r.reason for r in rejected)
    assert "undecodable payload" in reasons
    assert "unknown schema version: 9" in reasons
    assert "age_group" in reasons
    assert {r.source_id for r in rejected} == {None, "abc"}


def test_database_down_fails_the_batch_so_lambda_retries(models, postgres_url) -> None:
    # GIVEN a database URL whose server is not there
    unreachable = "postgresql+psycopg://postgres@127.0.0.1:1/nowhere?connect_timeout=1"
    event = kinesis_event(encoded([customer_record(row=1)]))
    # WHEN the handler runs THEN it raises (nothing acknowledged), and the retry on a healthy database succeeds
    with pytest.raises(OperationalError, match="Connection refused"):
        handle(event, models=models, engine=get_engine(unreachable))
    dispose_engine(unreachable)
    assert handle(event, models=models, engine=get_engine(postgres_url)) == {"batchItemFailures": []}
