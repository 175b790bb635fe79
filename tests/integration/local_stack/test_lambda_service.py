"""The local Lambda service's event source mapping semantics, against the emulator over HTTP."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from churn_common.aws import client
from infra.local.lambda_service import (
    CheckpointStore,
    KinesisMappingConfig,
    KinesisShardPoller,
    MappingStats,
    SqsEventSource,
)
from infra.local.resources import event_source_mappings

pytestmark = pytest.mark.integration


class RecordingHandler:
    """A real handler function that remembers what it was given and fails where told to."""

    def __init__(self, *, fail_on: Callable[[list[bytes]], dict[str, Any] | None] = lambda _: None) -> None:
        self.calls: list[list[bytes]] = []
        self.events: list[dict[str, Any]] = []
        self._fail_on = fail_on

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        payloads = [base64.b64decode(r["kinesis"]["data"]) for r in event["Records"]]
        self.calls.append(payloads)
        self.events.append(event)
        return self._fail_on_records(event, payloads)

    def _fail_on_records(self, event: dict[str, Any], payloads: list[bytes]) -> dict[str, Any]:
        outcome = self._fail_on(payloads)
        if outcome is None:
            return {"batchItemFailures": []}
        if "raise" in outcome:
            raise RuntimeError(outcome["raise"])
        index = outcome["fail_index"]
        return {"batchItemFailures": [{"itemIdentifier": event["Records"][index]["kinesis"]["sequenceNumber"]}]}

    @property
    def delivered(self) -> list[bytes]:
        return [p for call in self.calls for p in call]


def put_on_first_shard(stream: str, payloads: list[bytes]) -> str:
    kinesis = client("kinesis")
    shard = kinesis.list_shards(StreamName=stream)["Shards"][0]
    kinesis.put_records(
        StreamName=stream,
        Records=[
            {"Data": p, "PartitionKey": "k", "ExplicitHashKey": shard["HashKeyRange"]["StartingHashKey"]}
            for p in payloads
        ],
    )
    return str(shard["ShardId"])


@pytest.fixture
def make_poller(aws, tmp_path: Path) -> Callable[..., KinesisShardPoller]:  # type: ignore[no-untyped-def]
    def factory(handler: RecordingHandler, shard_id: str, **overrides: Any) -> KinesisShardPoller:
        settings = {**event_source_mappings()["stream_scorer"], **overrides}
        config = KinesisMappingConfig.from_mapping(settings, on_failure_queue_url=aws.scorer_dlq_url)
        return KinesisShardPoller(
            name="stream_scorer",
            stream_name=aws.stream_name,
            stream_arn=aws.stream_arn,
            shard_id=shard_id,
            handler=handler,
            config=config,
            checkpoints=CheckpointStore(tmp_path / "checkpoints.json"),
            stats=MappingStats(),
        )

    return factory


def drain(poller: KinesisShardPoller, *, polls: int = 20) -> None:
    for _ in range(polls):
        poller.poll_once()


def payloads(n: int) -> list[bytes]:
    return [f"r{i:03d}".encode() for i in range(n)]


def test_batches_respect_batch_size_order_and_event_shape(aws, make_poller) -> None:
    # GIVEN 25 records on one shard and a batch size of 10
    shard = put_on_first_shard(aws.stream_name, payloads(25))
    handler = RecordingHandler()
    poller = make_poller(handler, shard, batch_size=10, maximum_batching_window_in_seconds=0)
    # WHEN the mapping polls
    drain(poller)
    # THEN records arrive once, in order, in batches of at most 10, shaped like AWS's Kinesis events
    assert handler.delivered == payloads(25)
    assert [len(c) for c in handler.calls] == [10, 10, 5]
    record = handler.events[0]["Records"][0]
    assert record["eventSource"] == "aws:kinesis"
    assert record["eventSourceARN"] == aws.stream_arn
    assert record["eventID"] == f"{shard}:{record['kinesis']['sequenceNumber']}"


def test_batch_item_failure_resumes_at_the_lowest_failed_record(aws, make_poller) -> None:
    # GIVEN a handler that reports record r004 failed the first time it sees it
    shard = put_on_first_shard(aws.stream_name, payloads(8))
    seen: set[bytes] = set()

    def fail_once(batch: list[bytes]) -> dict[str, Any] | None:
        if b"r004" in batch and b"r004" not in seen:
            seen.add(b"r004")
            return {"fail_index": batch.index(b"r004")}
        return None

    handler = RecordingHandler(fail_on=fail_once)
    poller = make_poller(handler, shard, batch_size=10, maximum_batching_window_in_seconds=0)
    # WHEN the mapping polls
    drain(poller)
    # THEN the retry starts at r004: r000..r003 are not delivered again, nothing is skipped
    assert handler.calls[0] == payloads(8)
    assert handler.calls[1] == payloads(8)[4:]
    assert sorted(set(handler.delivered)) == payloads(8)


def test_poison_batch_is_bisected_then_dead_lettered_with_its_range(aws, make_poller) -> None:
    # GIVEN a handler that always crashes on record r005
    shard = put_on_first_shard(aws.stream_name, payloads(8))
    handler = RecordingHandler(fail_on=lambda batch: {"raise": "poison"} if b"r005" in batch else None)
    poller = make_poller(handler, shard, batch_size=10, maximum_batching_window_in_seconds=0, maximum_retry_attempts=2)
    # WHEN the mapping polls
    drain(poller)
    # THEN every other record was processed, and r005 went to the on-failure queue as AWS describes it
    processed = {p for call in handler.calls if b"r005" not in call for p in call}
    assert processed == set(payloads(8)) - {b"r005"}
    messages = client("sqs").receive_message(QueueUrl=aws.scorer_dlq_url, MaxNumberOfMessages=10)["Messages"]
    assert len(messages) == 1
    info = json.loads(messages[0]["Body"])["KinesisBatchInfo"]
    assert info["shardId"] == shard
    assert info["batchSize"] == 1
    assert info["startSequenceNumber"] == info["endSequenceNumber"]
    assert poller.stats.dead_lettered == 1


def test_checkpoint_survives_a_restart(aws, make_poller) -> None:
    # GIVEN a mapping that processed 5 records, then stopped
    shard = put_on_first_shard(aws.stream_name, payloads(5))
    first = RecordingHandler()
    drain(make_poller(first, shard, maximum_batching_window_in_seconds=0))
    put_on_first_shard(aws.stream_name, [b"late-1", b"late-2"])
    # WHEN a new mapping starts with the same checkpoint store
    second = RecordingHandler()
    drain(make_poller(second, shard, maximum_batching_window_in_seconds=0))
    # THEN it resumes after the checkpoint: nothing redelivered, nothing missed
    assert first.delivered == payloads(5)
    assert second.delivered == [b"late-1", b"late-2"]


def test_records_older_than_the_maximum_age_are_dead_lettered(aws, make_poller) -> None:
    shard = put_on_first_shard(aws.stream_name, payloads(3))
    handler = RecordingHandler()
    poller = make_poller(handler, shard, maximum_batching_window_in_seconds=0, maximum_record_age_in_seconds=0)
    import time

    time.sleep(1.1)
    drain(poller, polls=3)
    assert handler.delivered == []
    assert poller.stats.dead_lettered == 3


def test_sqs_failed_messages_come_back_and_successful_ones_are_deleted(aws) -> None:
    # GIVEN two messages, one of which the handler reports as failed
    sqs = client("sqs")
    for body in ("ok", "fail"):
        sqs.send_message(QueueUrl=aws.file_drops_queue_url, MessageBody=body)
    bodies: list[str] = []

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        bodies.extend(r["body"] for r in event["Records"])
        assert all(r["eventSource"] == "aws:sqs" for r in event["Records"])
        failed = [r["messageId"] for r in event["Records"] if r["body"] == "fail"]
        return {"batchItemFailures": [{"itemIdentifier": m} for m in failed]}

    source = SqsEventSource(
        name="producer",
        queue_url=aws.file_drops_queue_url,
        queue_arn=aws.file_drops_queue_arn,
        handler=handler,
        batch_size=10,
    )
    # WHEN it polls until the failed message has been seen twice
    for _ in range(10):
        source.poll_once()
        if bodies.count("fail") >= 2:
            break
    # THEN the successful message was delivered once, the failed one again
    assert bodies.count("ok") == 1
    assert bodies.count("fail") >= 2
