"""A stream re-created under the same name while the scorer's container stays warm: its sequence numbers
start again, and the scorer's cached incarnation would make new records look like old deliveries. The
write notices the stored delivery ids hold other records, refuses the batch, and the retry stores it under
the new incarnation. On the emulator (a real stream deleted and created again) and real databases."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select

from churn_common.aws import client
from churn_common.database import get_engine, predictions
from stream_scorer.handler import handle
from stream_scorer.model import ModelCache
from stream_scorer.sink import StaleDeliveryIdsError
from stream_scorer.stream_incarnation import StreamIncarnations
from tests.factories import customer_record, encoded, kinesis_event

pytestmark = pytest.mark.integration


@pytest.fixture
def models(registered_model) -> ModelCache:  # type: ignore[no-untyped-def]
    return ModelCache(name="XGBoostChurnModel", alias="staging", refresh_seconds=60)


def recreate(stream_name: str) -> None:
    kinesis = client("kinesis")
    kinesis.delete_stream(StreamName=stream_name)
    time.sleep(0.01)  # a creation time of its own, to the millisecond
    kinesis.create_stream(StreamName=stream_name, ShardCount=2)


def stored(database_url: str) -> int:
    with get_engine(database_url).connect() as connection:
        return int(connection.execute(select(func.count()).select_from(predictions)).scalar_one())


def test_new_records_of_a_recreated_stream_are_stored_after_one_refused_attempt(
    aws, database_url: str, models: ModelCache
) -> None:
    # GIVEN a warm scorer that stored 20 records of the stream, their delivery ids qualified by its creation
    incarnations = StreamIncarnations()
    engine = get_engine(database_url)
    first = kinesis_event(encoded([customer_record(row=i, source="s3://b/a.csv") for i in range(1, 21)]))
    assert handle(first, models=models, engine=engine, incarnations=incarnations) == {"batchItemFailures": []}
    # WHEN the stream is re-created and 20 other records arrive under the same sequence numbers
    recreate(aws.stream_name)
    second = kinesis_event(encoded([customer_record(row=i, source="s3://b/b.csv") for i in range(1, 21)]))
    # THEN the first attempt stores nothing and fails the batch (Lambda retries it) ...
    with pytest.raises(StaleDeliveryIdsError):
        handle(second, models=models, engine=engine, incarnations=incarnations)
    assert stored(database_url) == 20
    # ... and the retry stores all of them
    assert handle(second, models=models, engine=engine, incarnations=incarnations) == {"batchItemFailures": []}
    assert stored(database_url) == 40


def test_a_redelivery_to_a_warm_scorer_is_no_collision(aws, database_url: str, models: ModelCache) -> None:
    # GIVEN a batch stored once WHEN it is delivered again THEN it succeeds and stores nothing new
    incarnations = StreamIncarnations()
    engine = get_engine(database_url)
    event = kinesis_event(encoded([customer_record(row=i) for i in range(1, 11)]))
    for _ in range(2):
        assert handle(event, models=models, engine=engine, incarnations=incarnations) == {"batchItemFailures": []}
    assert stored(database_url) == 10


def test_the_scorer_calls_only_what_its_deployed_policy_allows(aws, database_url: str, models: ModelCache) -> None:
    # GIVEN the scorer's policy as Terraform renders it for the local stream, and its Kinesis client recorded
    from infra.local.policy_documents import local_references, render_policy
    from tests.iam_policy import REGION, CallRecorder, is_allowed, required_permissions

    policy = render_policy("stream_scorer", local_references(aws, database_secret_arn=None, region=REGION))
    recorder = CallRecorder()
    kinesis = client("kinesis")
    recorder.attach(kinesis)
    try:
        event = kinesis_event(encoded([customer_record(row=i) for i in range(1, 6)]))
        with recorder.recording():
            handle(event, models=models, engine=get_engine(database_url), incarnations=StreamIncarnations())
    finally:
        recorder.detach(kinesis)
    # THEN its one call of its own (the stream's creation time) is allowed
    permissions = [
        p
        for service, operation, params in recorder.calls
        for p in required_permissions(service, operation, params, region="us-east-1", account="123456789012")
    ]
    assert [p.action for p in permissions] == ["kinesis:DescribeStreamSummary"]
    assert all(is_allowed(policy, p) for p in permissions)
