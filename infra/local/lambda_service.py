"""A local stand-in for the Lambda service: event source mappings that poll SQS and Kinesis and
invoke the very same handler functions with AWS-shaped events.

Kinesis semantics follow AWS for the settings in ``infra/event_source_mappings.json``: batch size, batching
window and the 6 MB invocation payload limit; starting position (TRIM_HORIZON, LATEST); per-shard ordering
(one poller per shard, one batch in flight); ReportBatchItemFailures (retry from the lowest reported
sequence number, a malformed report fails the whole batch, the report is ignored when the mapping does not
enable it); bisect on function error (splitting uses no retry); maximum retry attempts and maximum record
age (-1 = unbounded); the on-failure destination (an SQS message describing the discarded records' shard
and sequence range, as AWS sends); checkpoints persisted so that a restart resumes where it stopped.
Not modelled: AT_TIMESTAMP starting positions, resharding (parents before children), parallelization
factors above 1, tumbling windows and filter criteria.

One difference, on purpose: a failed SQS message is made visible again after a short back-off instead
of the queue's full visibility timeout, so local runs retry in seconds rather than minutes.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from churn_common.aws import client
from infra.local.principals import OPERATOR, acting_as

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any], Any], dict[str, Any] | None]

SQS_WAIT_SECONDS = 1
SQS_RETRY_VISIBILITY_SECONDS = 2
KINESIS_IDLE_SLEEP_SECONDS = 0.2
KINESIS_RETRY_BASE_SECONDS = 0.2
KINESIS_MAX_BACKOFF_DOUBLINGS = 5
GET_RECORDS_LIMIT = 10_000
MAX_INVOCATION_PAYLOAD_BYTES = 6 * 1024 * 1024  # synchronous invocation payload limit
EVENT_ENVELOPE_BYTES = len('{"Records": []}')
DEFAULT_TIMEOUT_SECONDS = 900.0  # Lambda's largest function timeout
RETRIES_EXHAUSTED = "RetryAttemptsExhausted"
AGE_EXCEEDED = "RecordAgeExceeded"


@dataclass
class LambdaContext:
    """The attributes handlers commonly read from the Lambda context object."""

    function_name: str
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    started: float = field(default_factory=time.monotonic)

    def get_remaining_time_in_millis(self) -> int:
        return int((self.timeout_seconds - (time.monotonic() - self.started)) * 1000)


def checkpoint_key(stream_arn: str, shard_id: str) -> str:
    """Under which key a shard's checkpoint is kept."""
    return f"{stream_arn}/{shard_id}"


class CheckpointStore:
    """Per-shard checkpoints (last fully processed sequence number), persisted atomically as JSON."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._data: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}

    def get(self, key: str) -> str | None:
        with self._lock:
            return self._data.get(key)

    def set(self, key: str, sequence_number: str) -> None:
        with self._lock:
            self._data[key] = sequence_number
            self._path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self._path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self._data, indent=1, sort_keys=True))
            tmp.replace(self._path)


@dataclass
class MappingStats:
    invocations: int = 0
    errors: int = 0
    records: int = 0
    dead_lettered: int = 0
    timeouts: int = 0


def _lambda_message_attribute(value: dict[str, Any]) -> dict[str, Any]:
    """A message attribute as Lambda delivers it: camel-case keys, binary values as base64 text, list slots."""
    binary = value.get("BinaryValue")
    return {
        **({"stringValue": value["StringValue"]} if "StringValue" in value else {}),
        **({"binaryValue": base64.b64encode(binary).decode("ascii")} if binary is not None else {}),
        "stringListValues": list(value.get("StringListValues", [])),
        "binaryListValues": [base64.b64encode(item).decode("ascii") for item in value.get("BinaryListValues", [])],
        "dataType": value["DataType"],
    }


def _sqs_record(m: dict[str, Any], *, queue_arn: str, region: str) -> dict[str, Any]:
    attributes = m.get("MessageAttributes", {})
    return {
        "messageId": m["MessageId"],
        "receiptHandle": m["ReceiptHandle"],
        "body": m["Body"],
        "attributes": m.get("Attributes", {}),
        "messageAttributes": {name: _lambda_message_attribute(value) for name, value in attributes.items()},
        **({"md5OfMessageAttributes": m["MD5OfMessageAttributes"]} if "MD5OfMessageAttributes" in m else {}),
        "md5OfBody": m["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


def sqs_event(messages: list[dict[str, Any]], *, queue_arn: str, region: str) -> dict[str, Any]:
    """The ``aws:sqs`` event Lambda builds from received messages."""
    return {"Records": [_sqs_record(m, queue_arn=queue_arn, region=region) for m in messages]}


class SqsEventSource:
    """Polls a queue and invokes the handler with an ``aws:sqs`` event (ReportBatchItemFailures)."""

    def __init__(
        self,
        *,
        name: str,
        queue_url: str,
        queue_arn: str,
        handler: Handler,
        batch_size: int,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
    ) -> None:
        self.name, self.stats = name, MappingStats()
        self._queue_url, self._queue_arn, self._handler = queue_url, queue_arn, handler
        self._batch_size = min(batch_size, 10)
        self._timeout_seconds = timeout_seconds
        self._sqs = client("sqs")
        self._region = self._sqs.meta.region_name

    def poll_once(self) -> int:
        messages = self._sqs.receive_message(
            QueueUrl=self._queue_url,
            MaxNumberOfMessages=self._batch_size,
            WaitTimeSeconds=SQS_WAIT_SECONDS,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            return 0
        self.stats.invocations += 1
        self.stats.records += len(messages)
        context = LambdaContext(self.name, timeout_seconds=self._timeout_seconds)
        try:
            response = self._handler(sqs_event(messages, queue_arn=self._queue_arn, region=self._region), context) or {}
            failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
        except Exception:
            log.exception("%s: handler failed; the batch will be retried", self.name)
            self.stats.errors += 1
            failed = {m["MessageId"] for m in messages}
        if context.get_remaining_time_in_millis() < 0:
            # Lambda would have ended the invocation at its timeout: nothing it returned counts.
            log.error(
                "%s: invocation ran past its %.0f s timeout; the batch will be retried",
                self.name,
                self._timeout_seconds,
            )
            self.stats.errors += 1
            self.stats.timeouts += 1
            failed = {m["MessageId"] for m in messages}
        for message in messages:
            if message["MessageId"] in failed:
                # Not a call Lambda makes (a failed message waits out its visibility timeout there): the
                # stand-in's shortcut to a prompt retry, made as the service, not as the function.
                with acting_as(OPERATOR):
                    self._sqs.change_message_visibility(
                        QueueUrl=self._queue_url,
                        ReceiptHandle=message["ReceiptHandle"],
                        VisibilityTimeout=SQS_RETRY_VISIBILITY_SECONDS,
                    )
            else:
                self._sqs.delete_message(QueueUrl=self._queue_url, ReceiptHandle=message["ReceiptHandle"])
        return len(messages)


@dataclass(frozen=True)
class KinesisMappingConfig:
    batch_size: int
    batching_window_seconds: float
    starting_position: str
    bisect_on_error: bool
    maximum_retry_attempts: int
    maximum_record_age_seconds: int
    report_batch_item_failures: bool
    on_failure_queue_url: str | None

    @classmethod
    def from_mapping(cls, mapping: dict[str, Any], *, on_failure_queue_url: str | None) -> KinesisMappingConfig:
        return cls(
            batch_size=int(mapping["batch_size"]),
            batching_window_seconds=float(mapping["maximum_batching_window_in_seconds"]),
            starting_position=str(mapping["starting_position"]),
            bisect_on_error=bool(mapping["bisect_batch_on_function_error"]),
            maximum_retry_attempts=int(mapping["maximum_retry_attempts"]),
            maximum_record_age_seconds=int(mapping["maximum_record_age_in_seconds"]),
            report_batch_item_failures="ReportBatchItemFailures" in mapping.get("function_response_types", []),
            on_failure_queue_url=on_failure_queue_url,
        )

    def retries_exhausted(self, retries: int) -> bool:
        """-1 means retry until the records expire, as in AWS."""
        return 0 <= self.maximum_retry_attempts < retries

    def expired(self, age_seconds: float) -> bool:
        """-1 means records never expire (only the stream's retention ends them)."""
        return 0 <= self.maximum_record_age_seconds < age_seconds


@dataclass(frozen=True, slots=True)
class Invocation:
    """What one invocation of the function on a batch came to."""

    retry_from: int | None  # position in the batch of the first record to retry, None when all succeeded
    function_error: bool


SUCCEEDED = Invocation(retry_from=None, function_error=False)


def _aws_time(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def kinesis_event_record(
    record: dict[str, Any], *, shard_id: str, stream_arn: str, function_name: str, region: str
) -> dict[str, Any]:
    """One GetRecords record as Lambda hands it to the function (``Records[i]`` of a Kinesis event)."""
    return {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": record["PartitionKey"],
            "sequenceNumber": record["SequenceNumber"],
            "data": base64.b64encode(record["Data"]).decode(),
            "approximateArrivalTimestamp": record["ApproximateArrivalTimestamp"].timestamp(),
        },
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": f"{shard_id}:{record['SequenceNumber']}",
        "eventName": "aws:kinesis:record",
        "invokeIdentityArn": f"arn:aws:iam::000000000000:role/{function_name}",
        "awsRegion": region,
        "eventSourceARN": stream_arn,
    }


@dataclass
class _Pending:
    """A record read from the shard, with its event form and that form's size in the invocation payload."""

    raw: dict[str, Any]
    event_record: dict[str, Any]
    size: int

    @property
    def sequence_number(self) -> str:
        return str(self.raw["SequenceNumber"])

    @property
    def arrival(self) -> datetime:
        return self.raw["ApproximateArrivalTimestamp"]


class KinesisShardPoller:
    """One shard of a Kinesis event source mapping: ordered, checkpointed, retried, bisected, dead-lettered.

    ``clock`` (epoch seconds) drives the batching window and record ages, ``sleep`` the retry back-off;
    both are the real ones unless a test hands in its own.
    """

    def __init__(
        self,
        *,
        name: str,
        stream_name: str,
        stream_arn: str,
        shard_id: str,
        handler: Handler,
        config: KinesisMappingConfig,
        checkpoints: CheckpointStore,
        stats: MappingStats,
        stop: threading.Event | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], object] | None = None,
        retry_base_seconds: float = KINESIS_RETRY_BASE_SECONDS,
    ) -> None:
        self.name, self.shard_id = name, shard_id
        self._stream_name, self._stream_arn, self._handler = stream_name, stream_arn, handler
        self._config, self._checkpoints, self.stats = config, checkpoints, stats
        self._stop = stop or threading.Event()
        self._clock = clock
        self._sleep = sleep or self._stop.wait
        self._retry_base_seconds = retry_base_seconds
        self._kinesis, self._sqs = client("kinesis"), client("sqs")
        self._region = self._kinesis.meta.region_name
        self._key = checkpoint_key(stream_arn, shard_id)
        self._iterator: str | None = None
        self._shard_closed = False
        self._pending: list[_Pending] = []
        self._pending_since: float | None = None

    def reset_iterator(self) -> None:
        """After an error the next poll starts again from the checkpoint (iterators may have expired)."""
        self._iterator, self._shard_closed = None, False
        self._pending, self._pending_since = [], None

    def _new_iterator(self) -> str:
        """After the checkpoint; without one, at the starting position. A LATEST start is remembered as a
        time, so that a restart before the first checkpoint still reads what arrived in between."""
        checkpoint = self._checkpoints.get(self._key)
        started_key = f"{self._key}@started"
        kwargs: dict[str, Any]
        if checkpoint is not None:
            kwargs = {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "StartingSequenceNumber": checkpoint}
        elif self._config.starting_position == "LATEST" and (started := self._checkpoints.get(started_key)):
            kwargs = {"ShardIteratorType": "AT_TIMESTAMP", "Timestamp": datetime.fromtimestamp(float(started), UTC)}
        else:
            kwargs = {"ShardIteratorType": self._config.starting_position}
            if self._config.starting_position == "LATEST":
                self._checkpoints.set(started_key, repr(self._clock()))
        response = self._kinesis.get_shard_iterator(StreamName=self._stream_name, ShardId=self.shard_id, **kwargs)
        return str(response["ShardIterator"])

    def _pending_record(self, record: dict[str, Any]) -> _Pending:
        event_record = kinesis_event_record(
            record, shard_id=self.shard_id, stream_arn=self._stream_arn, function_name=self.name, region=self._region
        )
        data = event_record["kinesis"]["data"]
        shell = {**event_record, "kinesis": {**event_record["kinesis"], "data": ""}}
        size = len(data) + len(json.dumps(shell)) + len(", ")  # base64 needs no escaping in JSON
        return _Pending(raw=record, event_record=event_record, size=size)

    def _fill(self) -> None:
        room = self._config.batch_size - len(self._pending)
        if room <= 0 or self._shard_closed:
            return
        if self._iterator is None:
            self._iterator = self._new_iterator()
        response = self._kinesis.get_records(
            ShardIterator=self._iterator, Limit=min(room, GET_RECORDS_LIMIT), StreamARN=self._stream_arn
        )
        self._iterator = response.get("NextShardIterator")
        self._shard_closed = self._iterator is None  # a closed shard (after resharding) has no next iterator
        if response["Records"]:
            if not self._pending:
                self._pending_since = self._clock()
            self._pending.extend(self._pending_record(r) for r in response["Records"])

    def _batch_end(self) -> int:
        """How many pending records the next invocation takes: up to the batch size and the payload limit."""
        size, count = EVENT_ENVELOPE_BYTES, 0
        for record in self._pending[: self._config.batch_size]:
            if count and size + record.size > MAX_INVOCATION_PAYLOAD_BYTES:
                break
            size += record.size
            count += 1
        return count

    def _batch_ready(self, end: int) -> bool:
        if not self._pending:
            return False
        if end < len(self._pending) or end >= self._config.batch_size:
            return True  # full by count or by payload size
        return self._clock() - (self._pending_since or 0.0) >= self._config.batching_window_seconds

    def poll_once(self) -> int:
        """Fetch, and when a batch is ready (size, payload limit or window), deliver it; the checkpoint
        moves past the batch once every record succeeded or went to the on-failure destination.
        Returns the number of records the batch held."""
        self._fill()
        end = self._batch_end()
        if not self._batch_ready(end):
            return 0
        batch, self._pending = self._pending[:end], self._pending[end:]
        self._pending_since = self._clock() if self._pending else None
        if not self._deliver(batch):
            self.reset_iterator()  # stopped mid-retry: a restart resumes from the checkpoint
            return 0
        self._checkpoints.set(self._key, batch[-1].sequence_number)
        return len(batch)

    def _split_expired(self, records: list[_Pending]) -> tuple[list[_Pending], list[_Pending]]:
        now = self._clock()
        fresh: list[_Pending] = []
        expired: list[_Pending] = []
        for record in records:
            (expired if self._config.expired(now - record.arrival.timestamp()) else fresh).append(record)
        return fresh, expired

    def _invoke(self, records: list[_Pending]) -> Invocation:
        self.stats.invocations += 1
        self.stats.records += len(records)
        event = {"Records": [r.event_record for r in records]}
        try:
            response = self._handler(event, LambdaContext(self.name))
        except Exception:
            log.exception("%s/%s: handler failed on %d records", self.name, self.shard_id, len(records))
            self.stats.errors += 1
            return Invocation(retry_from=0, function_error=True)
        if not self._config.report_batch_item_failures:
            return SUCCEEDED  # without ReportBatchItemFailures, Lambda ignores what the function returns
        outcome = self._partial_outcome(response, [r.sequence_number for r in records])
        if outcome.retry_from is not None:
            self.stats.errors += 1
        return outcome

    @staticmethod
    def _partial_outcome(response: Any, sequence_numbers: list[str]) -> Invocation:
        """The ReportBatchItemFailures contract: an empty or missing list is success; otherwise the batch
        is retried from the lowest reported sequence number; an identifier that is empty, missing or not
        in the batch makes the whole batch a failure."""
        failures = response.get("batchItemFailures") if isinstance(response, dict) else None
        if not failures:
            return SUCCEEDED
        position = {number: index for index, number in enumerate(sequence_numbers)}
        identifiers = [f.get("itemIdentifier") if isinstance(f, dict) else None for f in failures]
        if not all(isinstance(i, str) and i in position for i in identifiers):
            return Invocation(retry_from=0, function_error=False)
        return Invocation(retry_from=min(position[i] for i in identifiers), function_error=False)

    def _deliver(self, records: list[_Pending]) -> bool:
        """Deliver in order until every record succeeded or was dead-lettered; False when stopped first.

        Failed records are retried from the reported point; on a function error with bisection the failed
        part is split in two (which uses no retry); past MaximumRetryAttempts, or once older than
        MaximumRecordAgeInSeconds, records go to the on-failure destination and the shard moves on."""
        parts: deque[tuple[list[_Pending], int]] = deque([(records, 0)])
        while parts:
            part, retries = parts.popleft()
            invocations = 0
            while part:
                part, expired = self._split_expired(part)
                if expired:
                    self._dead_letter(expired, condition=AGE_EXCEEDED, invocations=invocations, function_error=False)
                if not part:
                    break
                outcome = self._invoke(part)
                invocations += 1
                if outcome.retry_from is None:
                    break
                part = part[outcome.retry_from :]
                if outcome.function_error and self._config.bisect_on_error and len(part) > 1:
                    middle = len(part) // 2
                    parts.extendleft([(part[middle:], retries), (part[:middle], retries)])
                    break
                retries += 1
                if self._config.retries_exhausted(retries):
                    errored = outcome.function_error
                    self._dead_letter(
                        part, condition=RETRIES_EXHAUSTED, invocations=invocations, function_error=errored
                    )
                    break
                self._sleep(self._retry_base_seconds * 2 ** min(retries, KINESIS_MAX_BACKOFF_DOUBLINGS))
                if self._stop.is_set():
                    return False
        return True

    def _dead_letter(self, records: list[_Pending], *, condition: str, invocations: int, function_error: bool) -> None:
        self.stats.dead_lettered += len(records)
        log.error(
            "%s/%s: %d records to the on-failure destination (%s)", self.name, self.shard_id, len(records), condition
        )
        if self._config.on_failure_queue_url is None:
            return
        message = failure_record(
            records[0].raw,
            records[-1].raw,
            batch_size=len(records),
            shard_id=self.shard_id,
            stream_arn=self._stream_arn,
            function_arn=f"arn:aws:lambda:{self._region}:000000000000:function:{self.name}",
            condition=condition,
            invocations=invocations,
            function_error=function_error,
            at=datetime.fromtimestamp(self._clock(), UTC),
        )
        self._sqs.send_message(QueueUrl=self._config.on_failure_queue_url, MessageBody=json.dumps(message))


def failure_record(
    first: dict[str, Any],
    last: dict[str, Any],
    *,
    batch_size: int,
    shard_id: str,
    stream_arn: str,
    function_arn: str,
    condition: str,
    invocations: int,
    function_error: bool,
    at: datetime,
) -> dict[str, Any]:
    """The invocation record Lambda sends to a Kinesis mapping's on-failure destination: metadata
    describing the discarded records (their shard and sequence range), not the records themselves."""
    response_context: dict[str, Any] = {"statusCode": 200, "executedVersion": "$LATEST"}
    if function_error:
        response_context["functionError"] = "Unhandled"
    return {
        "requestContext": {
            "requestId": str(uuid.uuid4()),
            "functionArn": function_arn,
            "condition": condition,
            "approximateInvokeCount": invocations,
        },
        "responseContext": response_context,
        "version": "1.0",
        "timestamp": _aws_time(at),
        "KinesisBatchInfo": {
            "shardId": shard_id,
            "startSequenceNumber": first["SequenceNumber"],
            "endSequenceNumber": last["SequenceNumber"],
            "approximateArrivalOfFirstRecord": _aws_time(first["ApproximateArrivalTimestamp"]),
            "approximateArrivalOfLastRecord": _aws_time(last["ApproximateArrivalTimestamp"]),
            "batchSize": batch_size,
            "streamArn": stream_arn,
        },
    }


class LambdaService:
    """Runs every event source mapping in background threads until stopped."""

    def __init__(self) -> None:
        self._pollers: list[SqsEventSource | KinesisShardPoller] = []
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self.stats: dict[str, MappingStats] = {}

    def add_sqs(self, source: SqsEventSource) -> None:
        self.stats[source.name] = source.stats
        self._pollers.append(source)

    def add_kinesis(
        self,
        *,
        name: str,
        stream_name: str,
        stream_arn: str,
        handler: Handler,
        config: KinesisMappingConfig,
        checkpoints: CheckpointStore,
    ) -> None:
        stats = self.stats.setdefault(name, MappingStats())
        shards = client("kinesis").list_shards(StreamName=stream_name)["Shards"]
        for shard in shards:
            self._pollers.append(
                KinesisShardPoller(
                    name=name,
                    stream_name=stream_name,
                    stream_arn=stream_arn,
                    shard_id=shard["ShardId"],
                    handler=handler,
                    config=config,
                    checkpoints=checkpoints,
                    stats=stats,
                    stop=self._stop,
                )
            )

    def _run(self, poller: SqsEventSource | KinesisShardPoller) -> None:
        # Lambda polls and invokes with the function's execution role.
        with acting_as(poller.name):
            self._poll_until_stopped(poller)

    def _poll_until_stopped(self, poller: SqsEventSource | KinesisShardPoller) -> None:
        while not self._stop.is_set():
            try:
                delivered = poller.poll_once()
            except Exception:
                log.exception("%s: poll failed; retrying", poller.name)
                delivered = 0
                if isinstance(poller, KinesisShardPoller):
                    poller.reset_iterator()
            if not delivered and isinstance(poller, KinesisShardPoller):
                self._stop.wait(KINESIS_IDLE_SLEEP_SECONDS)

    def start(self) -> None:
        for poller in self._pollers:
            name = f"esm-{poller.name}-{getattr(poller, 'shard_id', 'queue')}"
            thread = threading.Thread(target=self._run, args=(poller,), name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 10.0) -> bool:
        """True when every poller thread has ended (each finishes the invocation it is in first)."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)
        return not any(thread.is_alive() for thread in self._threads)
