"""The local Lambda service's event source mapping semantics, against the emulator over HTTP.

Time is a test clock (batching window, record age) and retries do not really sleep, so nothing here waits.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from churn_common.aws import client
from infra.local.lambda_service import (
    CheckpointStore,
    KinesisMappingConfig,
    KinesisShardPoller,
    LambdaService,
    MappingStats,
    SqsEventSource,
    shard_pollers,
)
from infra.local.lambda_service.kinesis_poller import MAX_INVOCATION_PAYLOAD_BYTES
from infra.local.resources import event_source_mappings

pytestmark = pytest.mark.integration

DEADLOCK_GUARD_SECONDS = 60


class Clock:
    """Epoch seconds that move only when told to (record arrival times come from the emulator's clock)."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


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
        outcome = self._fail_on(payloads)
        if outcome is None:
            return {"batchItemFailures": []}
        if "raise" in outcome:
            raise RuntimeError(outcome["raise"])
        if "response" in outcome:
            return outcome["response"]
        records = event["Records"]
        return {
            "batchItemFailures": [{"itemIdentifier": records[i]["kinesis"]["sequenceNumber"]} for i in outcome["fail"]]
        }

    @property
    def delivered(self) -> list[bytes]:
        return [p for call in self.calls for p in call]


PUT_RECORDS_BYTES = 4 * 1024 * 1024  # under the 5 MB PutRecords request limit


def put_on_shard(stream: str, payloads: list[bytes], *, shard_index: int = 0) -> str:
    """Put in order on one shard, in PutRecords calls within the API's limits."""
    kinesis = client("kinesis")
    shard = kinesis.list_shards(StreamName=stream)["Shards"][shard_index]
    key = shard["HashKeyRange"]["StartingHashKey"]
    calls: list[list[bytes]] = [[]]
    for payload in payloads:
        if len(calls[-1]) == 100 or sum(map(len, calls[-1])) + len(payload) > PUT_RECORDS_BYTES:
            calls.append([])
        calls[-1].append(payload)
    for call in filter(None, calls):
        records = [{"Data": p, "PartitionKey": "k", "ExplicitHashKey": key} for p in call]
        kinesis.put_records(StreamName=stream, Records=records)
    return str(shard["ShardId"])


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def make_poller(aws, tmp_path: Path, clock: Clock) -> Callable[..., KinesisShardPoller]:  # type: ignore[no-untyped-def]
    def factory(
        handler: RecordingHandler,
        shard_id: str,
        *,
        checkpoints: Path | None = None,
        sleep: Callable[[float], object] = lambda _: None,
        stop: threading.Event | None = None,
        **overrides: Any,
    ) -> KinesisShardPoller:
        settings = {**event_source_mappings()["stream_scorer"], "maximum_batching_window_in_seconds": 0, **overrides}
        config = KinesisMappingConfig.from_mapping(settings, on_failure_queue_url=aws.scorer_dlq_url)
        return KinesisShardPoller(
            name="stream_scorer",
            stream_name=aws.stream_name,
            stream_arn=aws.stream_arn,
            shard_id=shard_id,
            handler=handler,
            config=config,
            checkpoints=CheckpointStore(checkpoints or tmp_path / "checkpoints.json"),
            stats=MappingStats(),
            clock=clock,
            sleep=sleep,
            stop=stop,
        )

    return factory


def drain(poller: KinesisShardPoller, *, polls: int = 20) -> None:
    for _ in range(polls):
        poller.poll_once()


def payloads(n: int, *, prefix: str = "r") -> list[bytes]:
    return [f"{prefix}{i:03d}".encode() for i in range(n)]


def dead_letters(aws) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    messages = client("sqs").receive_message(QueueUrl=aws.scorer_dlq_url, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"]) for m in messages]


def sequence_numbers(event: dict[str, Any]) -> list[str]:
    return [r["kinesis"]["sequenceNumber"] for r in event["Records"]]


# --- batching ---------------------------------------------------------------------------------------


def test_batches_respect_batch_size_order_and_event_shape(aws, make_poller) -> None:
    # GIVEN 25 records on one shard and a batch size of 10
    shard = put_on_shard(aws.stream_name, payloads(25))
    handler = RecordingHandler()
    poller = make_poller(handler, shard, batch_size=10)
    # WHEN the mapping polls
    drain(poller)
    # THEN records arrive once, in order, in batches of at most 10, shaped like AWS's Kinesis events
    assert handler.delivered == payloads(25)
    assert [len(c) for c in handler.calls] == [10, 10, 5]
    record = handler.events[0]["Records"][0]
    assert record["eventSource"] == "aws:kinesis"
    assert record["eventSourceARN"] == aws.stream_arn
    assert record["eventID"] == f"{shard}:{record['kinesis']['sequenceNumber']}"
    assert isinstance(record["kinesis"]["approximateArrivalTimestamp"], float)


def test_batching_window_holds_a_partial_batch_until_it_expires(aws, make_poller, clock) -> None:
    # GIVEN a 5 s batching window, a batch size of 10 and 3 records on the shard
    shard = put_on_shard(aws.stream_name, payloads(3))
    handler = RecordingHandler()
    poller = make_poller(handler, shard, batch_size=10, maximum_batching_window_in_seconds=5)
    # WHEN the mapping polls within the window THEN nothing is delivered yet
    drain(poller, polls=3)
    clock.advance(4.9)
    drain(poller, polls=3)
    assert handler.calls == []
    # WHEN the window has passed THEN the partial batch is delivered
    clock.advance(0.2)
    drain(poller, polls=1)
    assert handler.calls == [payloads(3)]
    # AND a full batch does not wait for the window
    put_on_shard(aws.stream_name, payloads(10, prefix="f"))
    drain(poller, polls=3)
    assert handler.calls[1] == payloads(10, prefix="f")


def test_an_invocation_payload_stays_within_the_6_mb_limit(aws, make_poller) -> None:
    # GIVEN eight records of 1 MB (1.33 MB each in the event, base64)
    big = [bytes([65 + i]) * 1_000_000 for i in range(8)]
    shard = put_on_shard(aws.stream_name, big)
    handler = RecordingHandler()
    poller = make_poller(handler, shard, batch_size=100)
    # WHEN the mapping polls
    drain(poller, polls=5)
    # THEN the batches are cut by payload size, each event within the limit, in order, none lost
    assert [len(c) for c in handler.calls] == [4, 4]
    assert all(len(json.dumps(e)) <= MAX_INVOCATION_PAYLOAD_BYTES for e in handler.events)
    assert handler.delivered == big


# --- starting position and checkpoints --------------------------------------------------------------


def test_trim_horizon_starts_at_the_oldest_record_and_latest_at_the_newest(aws, make_poller, tmp_path) -> None:
    # GIVEN records already on the shard before the mappings start
    shard = put_on_shard(aws.stream_name, payloads(3, prefix="old"))
    oldest, latest = RecordingHandler(), RecordingHandler()
    from_oldest = make_poller(oldest, shard, checkpoints=tmp_path / "a.json", starting_position="TRIM_HORIZON")
    from_latest = make_poller(latest, shard, checkpoints=tmp_path / "b.json", starting_position="LATEST")
    from_oldest.poll_once()
    from_latest.poll_once()
    # WHEN more records arrive
    put_on_shard(aws.stream_name, payloads(2, prefix="new"))
    drain(from_oldest)
    drain(from_latest)
    # THEN TRIM_HORIZON read everything and LATEST only what arrived after it started
    assert oldest.delivered == payloads(3, prefix="old") + payloads(2, prefix="new")
    assert latest.delivered == payloads(2, prefix="new")


def test_latest_start_is_kept_across_a_restart_before_the_first_checkpoint(aws, make_poller, clock) -> None:
    # GIVEN a LATEST mapping that started on an idle shard, then stopped
    shard = put_on_shard(aws.stream_name, payloads(2, prefix="before"))
    clock.now = time.time()
    make_poller(RecordingHandler(), shard, starting_position="LATEST").poll_once()
    # WHEN records arrive while it is stopped, and it restarts
    put_on_shard(aws.stream_name, payloads(2, prefix="while-down"))
    handler = RecordingHandler()
    drain(make_poller(handler, shard, starting_position="LATEST"))
    # THEN it reads from where it started: nothing older, nothing that arrived meanwhile missed
    assert handler.delivered == payloads(2, prefix="while-down")


def test_checkpoint_survives_a_restart(aws, make_poller) -> None:
    # GIVEN a mapping that processed 5 records, then stopped
    shard = put_on_shard(aws.stream_name, payloads(5))
    first = RecordingHandler()
    drain(make_poller(first, shard))
    put_on_shard(aws.stream_name, [b"late-1", b"late-2"])
    # WHEN a new mapping starts with the same checkpoint store
    second = RecordingHandler()
    drain(make_poller(second, shard))
    # THEN it resumes after the checkpoint: nothing redelivered, nothing missed
    assert first.delivered == payloads(5)
    assert second.delivered == [b"late-1", b"late-2"]


def test_a_batch_not_checkpointed_is_delivered_again_after_a_restart(aws, make_poller) -> None:
    # GIVEN a mapping stopped while retrying a failing batch (the stop interrupts the back-off)
    shard = put_on_shard(aws.stream_name, payloads(4))
    stop = threading.Event()
    failing = RecordingHandler(fail_on=lambda _: {"raise": "database down"})
    poller = make_poller(failing, shard, stop=stop, sleep=lambda _: stop.set(), bisect_batch_on_function_error=False)
    assert poller.poll_once() == 0
    # WHEN the service restarts
    handler = RecordingHandler()
    drain(make_poller(handler, shard))
    # THEN the batch comes again, whole: it was never acknowledged
    assert failing.calls == [payloads(4)]
    assert handler.delivered == payloads(4)
    assert dead_letters(aws) == []


# --- ReportBatchItemFailures --------------------------------------------------------------------------


def test_batch_item_failure_resumes_at_the_lowest_failed_record(aws, make_poller) -> None:
    # GIVEN a handler that reports r006 and r004 failed the first time it sees them
    shard = put_on_shard(aws.stream_name, payloads(8))
    seen: list[list[bytes]] = []

    def fail_once(batch: list[bytes]) -> dict[str, Any] | None:
        seen.append(batch)
        return {"fail": [batch.index(b"r006"), batch.index(b"r004")]} if len(seen) == 1 else None

    handler = RecordingHandler(fail_on=fail_once)
    poller = make_poller(handler, shard, batch_size=10)
    # WHEN the mapping polls
    drain(poller)
    # THEN the retry starts at r004 (the lowest): r000..r003 are not delivered again, nothing is skipped
    assert handler.calls == [payloads(8), payloads(8)[4:]]
    assert poller.stats.errors == 1


@pytest.mark.parametrize(
    "response",
    [
        {"batchItemFailures": [{"itemIdentifier": ""}]},
        {"batchItemFailures": [{"itemIdentifier": None}]},
        {"batchItemFailures": [{"item": "1"}]},
        {"batchItemFailures": [{"itemIdentifier": "999999999"}]},
    ],
    ids=["empty", "null", "wrong-key", "not-in-batch"],
)
def test_malformed_batch_item_failures_fail_the_whole_batch(aws, make_poller, response) -> None:
    # GIVEN a handler whose first answer is a malformed partial-failure response
    shard = put_on_shard(aws.stream_name, payloads(3))
    handler = RecordingHandler(fail_on=lambda _: {"response": response} if len(handler.calls) == 1 else None)
    # WHEN the mapping polls THEN the whole batch is retried
    drain(make_poller(handler, shard))
    assert handler.calls == [payloads(3), payloads(3)]


def test_without_report_batch_item_failures_the_response_is_not_read(aws, make_poller) -> None:
    # GIVEN a mapping without ReportBatchItemFailures and a handler that reports a failure
    shard = put_on_shard(aws.stream_name, payloads(3))
    handler = RecordingHandler(fail_on=lambda batch: {"fail": [0]})
    poller = make_poller(handler, shard, function_response_types=[])
    # WHEN the mapping polls THEN, as in AWS, the batch counts as a success and the shard moves on
    drain(poller)
    assert handler.calls == [payloads(3)]
    assert poller.stats.errors == 0


# --- retries, bisection, record age, on-failure destination ----------------------------------------


def test_poison_batch_is_bisected_then_dead_lettered_with_its_range(aws, make_poller) -> None:
    # GIVEN a handler that always crashes on record r005
    shard = put_on_shard(aws.stream_name, payloads(8))
    handler = RecordingHandler(fail_on=lambda batch: {"raise": "poison"} if b"r005" in batch else None)
    poller = make_poller(handler, shard, batch_size=10, maximum_retry_attempts=2)
    # WHEN the mapping polls
    drain(poller)
    # THEN halves without r005 were processed once, in order, and r005 alone was retried then dead-lettered
    processed = [p for call in handler.calls if b"r005" not in call for p in call]
    assert processed == [p for p in payloads(8) if p != b"r005"]
    assert [c for c in handler.calls if c == [b"r005"]] == [[b"r005"]] * 3
    (message,) = dead_letters(aws)
    info = message["KinesisBatchInfo"]
    assert info["shardId"] == shard
    assert info["batchSize"] == 1
    assert info["startSequenceNumber"] == info["endSequenceNumber"]
    assert message["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert message["responseContext"]["functionError"] == "Unhandled"
    assert poller.stats.dead_lettered == 1


def test_without_bisection_the_batch_is_retried_whole_then_dead_lettered_as_aws_describes_it(aws, make_poller) -> None:
    # GIVEN a handler that fails on the first six records, two retries allowed and no bisection
    shard = put_on_shard(aws.stream_name, payloads(6))
    handler = RecordingHandler(fail_on=lambda batch: {"raise": "down"} if b"r000" in batch else None)
    poller = make_poller(handler, shard, maximum_retry_attempts=2, bisect_batch_on_function_error=False)
    # WHEN the mapping polls, and a record arrives after the failing batch
    poller.poll_once()
    put_on_shard(aws.stream_name, [b"next"])
    drain(poller)
    # THEN the batch was invoked 1 + 2 times, then described on the on-failure queue, and the shard moved on
    assert handler.calls == [payloads(6)] * 3 + [[b"next"]]
    (message,) = dead_letters(aws)
    first, last = sequence_numbers(handler.events[0])[0], sequence_numbers(handler.events[0])[-1]
    assert message["requestContext"]["approximateInvokeCount"] == 3
    assert message["requestContext"]["functionArn"].endswith(":function:stream_scorer")
    assert message["version"] == "1.0"
    assert message["timestamp"].endswith("Z")
    assert message["KinesisBatchInfo"] == {
        "shardId": shard,
        "startSequenceNumber": first,
        "endSequenceNumber": last,
        "approximateArrivalOfFirstRecord": message["KinesisBatchInfo"]["approximateArrivalOfFirstRecord"],
        "approximateArrivalOfLastRecord": message["KinesisBatchInfo"]["approximateArrivalOfLastRecord"],
        "batchSize": 6,
        "streamArn": aws.stream_arn,
    }
    assert message["KinesisBatchInfo"]["approximateArrivalOfFirstRecord"].endswith("Z")


def test_infinite_retries_go_on_until_the_records_are_too_old(aws, make_poller, clock) -> None:
    # GIVEN retries without bound (-1), a 60 s maximum record age, a handler that always fails, and
    # a back-off that lets 10 s pass per retry
    shard = put_on_shard(aws.stream_name, payloads(2))
    handler = RecordingHandler(fail_on=lambda _: {"raise": "down"})
    poller = make_poller(
        handler,
        shard,
        maximum_retry_attempts=-1,
        maximum_record_age_in_seconds=60,
        bisect_batch_on_function_error=False,
        sleep=lambda _: clock.advance(10),
    )
    # WHEN the mapping polls
    drain(poller, polls=2)
    # THEN it retried past any finite default until the records expired, then dead-lettered them by age
    assert len(handler.calls) == 7
    (message,) = dead_letters(aws)
    assert message["requestContext"]["condition"] == "RecordAgeExceeded"
    assert message["KinesisBatchInfo"]["batchSize"] == 2


def test_records_older_than_the_maximum_age_are_dead_lettered_without_invoking(aws, make_poller, clock) -> None:
    shard = put_on_shard(aws.stream_name, payloads(3))
    handler = RecordingHandler()
    poller = make_poller(handler, shard, maximum_record_age_in_seconds=60)
    clock.advance(61)
    drain(poller, polls=3)
    assert handler.delivered == []
    assert poller.stats.dead_lettered == 3
    (message,) = dead_letters(aws)
    assert message["requestContext"]["condition"] == "RecordAgeExceeded"
    assert message["requestContext"]["approximateInvokeCount"] == 0


# --- shards -----------------------------------------------------------------------------------------


def test_each_shard_is_delivered_in_order_and_a_stuck_shard_does_not_hold_up_the_other(aws, tmp_path) -> None:
    # GIVEN records on both shards, and a function whose invocations for shard 0 cannot finish until
    # shard 1 has been fully processed
    shard_0 = put_on_shard(aws.stream_name, payloads(30, prefix="a"), shard_index=0)
    shard_1 = put_on_shard(aws.stream_name, payloads(30, prefix="b"), shard_index=1)
    shard_1_done, lock = threading.Event(), threading.Lock()
    delivered: dict[str, list[bytes]] = {shard_0: [], shard_1: []}
    waited: list[bool] = []

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        shard = event["Records"][0]["eventID"].split(":")[0]
        if shard == shard_0:
            waited.append(shard_1_done.wait(DEADLOCK_GUARD_SECONDS))
        with lock:
            delivered[shard].extend(base64.b64decode(r["kinesis"]["data"]) for r in event["Records"])
            if len(delivered[shard_1]) == 30:
                shard_1_done.set()
        return {"batchItemFailures": []}

    mapping = {**event_source_mappings()["stream_scorer"], "batch_size": 7, "maximum_batching_window_in_seconds": 0}
    service = LambdaService()
    service.add(
        *shard_pollers(
            name="stream_scorer",
            stream_name=aws.stream_name,
            stream_arn=aws.stream_arn,
            handler=handler,
            config=KinesisMappingConfig.from_mapping(mapping, on_failure_queue_url=aws.scorer_dlq_url),
            checkpoints=CheckpointStore(tmp_path / "checkpoints.json"),
        )
    )
    # WHEN the service runs its pollers
    service.start()
    try:
        deadline = time.monotonic() + DEADLOCK_GUARD_SECONDS
        while len(delivered[shard_0]) < 30 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        service.stop()
    # THEN shard 1 finished while shard 0 was held, and each shard saw its records once, in order
    assert waited
    assert all(waited)
    assert delivered[shard_1] == payloads(30, prefix="b")
    assert delivered[shard_0] == payloads(30, prefix="a")


# --- SQS --------------------------------------------------------------------------------------------


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


def test_an_sqs_invocation_that_runs_past_its_timeout_fails_whatever_it_returned(aws) -> None:
    # GIVEN a function with a 0.3 s timeout that needs longer, but reports success
    client("sqs").send_message(QueueUrl=aws.file_drops_queue_url, MessageBody="slow")
    remaining: list[int] = []

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        remaining.append(context.get_remaining_time_in_millis())
        time.sleep(0.5)
        return {"batchItemFailures": []}

    source = SqsEventSource(
        name="producer",
        queue_url=aws.file_drops_queue_url,
        queue_arn=aws.file_drops_queue_arn,
        handler=handler,
        batch_size=10,
        timeout_seconds=0.3,
    )
    # WHEN it polls until the message came twice
    for _ in range(10):
        source.poll_once()
        if len(remaining) >= 2:
            break
    # THEN the handler saw its timeout in the context, and the message came back: Lambda ends such an
    # invocation, so nothing it returned counts
    assert len(remaining) >= 2
    assert 0 < remaining[0] <= 300
    assert source.stats.timeouts >= 1
