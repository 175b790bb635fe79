"""A local stand-in for the Lambda service: event source mappings that poll SQS and Kinesis and
invoke the very same handler functions with AWS-shaped events.

Semantics follow AWS for the settings in ``infra/event_source_mappings.json``: batch size, batching
window, starting position, ReportBatchItemFailures (checkpoint at the lowest failed sequence number),
bisect on error, maximum retry attempts, maximum record age, on-failure destination (an SQS message
describing the batch, as AWS sends), per-shard ordering, and checkpoints persisted across restarts.
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
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from churn_common.aws import client

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any], Any], dict[str, Any] | None]

SQS_WAIT_SECONDS = 1
SQS_RETRY_VISIBILITY_SECONDS = 2
KINESIS_IDLE_SLEEP_SECONDS = 0.2
KINESIS_RETRY_BASE_SECONDS = 0.2
GET_RECORDS_LIMIT = 10_000


@dataclass
class LambdaContext:
    """The attributes handlers commonly read from the Lambda context object."""

    function_name: str
    timeout_seconds: float = 900.0
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    started: float = field(default_factory=time.monotonic)

    def get_remaining_time_in_millis(self) -> int:
        return int((self.timeout_seconds - (time.monotonic() - self.started)) * 1000)


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


class SqsEventSource:
    """Polls a queue and invokes the handler with an ``aws:sqs`` event (ReportBatchItemFailures)."""

    def __init__(self, *, name: str, queue_url: str, queue_arn: str, handler: Handler, batch_size: int) -> None:
        self.name, self.stats = name, MappingStats()
        self._queue_url, self._queue_arn, self._handler = queue_url, queue_arn, handler
        self._batch_size = min(batch_size, 10)
        self._sqs = client("sqs")
        self._region = self._sqs.meta.region_name

    def _event(self, messages: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "Records": [
                {
                    "messageId": m["MessageId"],
                    "receiptHandle": m["ReceiptHandle"],
                    "body": m["Body"],
                    "attributes": m.get("Attributes", {}),
                    "messageAttributes": m.get("MessageAttributes", {}),
                    "md5OfBody": m["MD5OfBody"],
                    "eventSource": "aws:sqs",
                    "eventSourceARN": self._queue_arn,
                    "awsRegion": self._region,
                }
                for m in messages
            ]
        }

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
        try:
            response = self._handler(self._event(messages), LambdaContext(self.name)) or {}
            failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
        except Exception:
            log.exception("%s: handler failed; the batch will be retried", self.name)
            self.stats.errors += 1
            failed = {m["MessageId"] for m in messages}
        for message in messages:
            if message["MessageId"] in failed:
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


class KinesisShardPoller:
    """One shard of a Kinesis event source mapping: ordered, checkpointed, retried, dead-lettered."""

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
    ) -> None:
        self.name, self.shard_id = name, shard_id
        self._stream_name, self._stream_arn, self._handler = stream_name, stream_arn, handler
        self._config, self._checkpoints, self.stats = config, checkpoints, stats
        self._kinesis, self._sqs = client("kinesis"), client("sqs")
        self._region = self._kinesis.meta.region_name
        self._key = f"{stream_arn}/{shard_id}"
        self._iterator: str | None = None
        self._pending: list[dict[str, Any]] = []
        self._pending_since: float | None = None

    def reset_iterator(self) -> None:
        """After an error the next poll starts again from the checkpoint (iterators may have expired)."""
        self._iterator = None
        self._pending, self._pending_since = [], None

    def _new_iterator(self) -> str:
        checkpoint = self._checkpoints.get(self._key)
        if checkpoint is not None:
            kwargs = {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "StartingSequenceNumber": checkpoint}
        else:
            kwargs = {"ShardIteratorType": self._config.starting_position}
        return self._kinesis.get_shard_iterator(StreamName=self._stream_name, ShardId=self.shard_id, **kwargs)[
            "ShardIterator"
        ]

    def _event_record(self, record: dict[str, Any]) -> dict[str, Any]:
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
            "eventID": f"{self.shard_id}:{record['SequenceNumber']}",
            "eventName": "aws:kinesis:record",
            "invokeIdentityArn": f"arn:aws:iam::000000000000:role/{self.name}",
            "awsRegion": self._region,
            "eventSourceARN": self._stream_arn,
        }

    def _fill(self) -> None:
        if self._iterator is None:
            self._iterator = self._new_iterator()
        room = self._config.batch_size - len(self._pending)
        if room <= 0:
            return
        response = self._kinesis.get_records(ShardIterator=self._iterator, Limit=min(room, GET_RECORDS_LIMIT))
        self._iterator = response.get("NextShardIterator")
        if response["Records"]:
            if not self._pending:
                self._pending_since = time.monotonic()
            self._pending.extend(response["Records"])

    def _batch_ready(self) -> bool:
        if not self._pending:
            return False
        if len(self._pending) >= self._config.batch_size:
            return True
        return time.monotonic() - (self._pending_since or 0) >= self._config.batching_window_seconds

    def poll_once(self) -> int:
        """Fetch, and when a batch is ready (size or window), deliver it. Returns records delivered."""
        self._fill()
        if not self._batch_ready():
            return 0
        batch, self._pending = self._pending[: self._config.batch_size], self._pending[self._config.batch_size :]
        self._pending_since = time.monotonic() if self._pending else None
        batch = self._drop_expired(batch)
        if batch:
            self._deliver(batch)
            self._checkpoints.set(self._key, batch[-1]["SequenceNumber"])
        return len(batch)

    def _drop_expired(self, batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
        limit = self._config.maximum_record_age_seconds
        if limit < 0:
            return batch
        now = datetime.now(tz=UTC)
        fresh: list[dict[str, Any]] = []
        expired: list[dict[str, Any]] = []
        for record in batch:
            age = (now - record["ApproximateArrivalTimestamp"]).total_seconds()
            (expired if age > limit else fresh).append(record)
        if expired:
            self._dead_letter(expired, reason="RecordAgeExceeded")
        return fresh

    def _invoke(self, records: list[dict[str, Any]]) -> tuple[str | None, bool]:
        """Invoke once: (sequence number to resume from or None on success, whether the function errored)."""
        self.stats.invocations += 1
        self.stats.records += len(records)
        event = {"Records": [self._event_record(r) for r in records]}
        try:
            response = self._handler(event, LambdaContext(self.name)) or {}
        except Exception:
            log.exception("%s/%s: handler failed on %d records", self.name, self.shard_id, len(records))
            self.stats.errors += 1
            return records[0]["SequenceNumber"], True
        failures = response.get("batchItemFailures", []) if self._config.report_batch_item_failures else []
        if not failures:
            return None, False
        self.stats.errors += 1
        return min((f["itemIdentifier"] for f in failures), key=int), False

    def _deliver(self, records: list[dict[str, Any]]) -> None:
        """Deliver in order; retry from the reported failure point; bisect on function errors;
        dead-letter after the retry bound."""
        queue = [records]
        while queue:
            part = queue.pop(0)
            attempts = 0
            while part:
                resume_at, function_error = self._invoke(part)
                if resume_at is None:
                    break
                part = [r for r in part if int(r["SequenceNumber"]) >= int(resume_at)]
                attempts += 1
                if attempts > self._config.maximum_retry_attempts:
                    self._dead_letter(part, reason="RetryAttemptsExhausted")
                    break
                if function_error and self._config.bisect_on_error and len(part) > 1:
                    middle = len(part) // 2
                    queue[:0] = [part[:middle], part[middle:]]
                    break
                time.sleep(KINESIS_RETRY_BASE_SECONDS * 2 ** min(attempts, 5))

    def _dead_letter(self, records: list[dict[str, Any]], *, reason: str) -> None:
        self.stats.dead_lettered += len(records)
        log.error(
            "%s/%s: %d records to the on-failure destination (%s)", self.name, self.shard_id, len(records), reason
        )
        if self._config.on_failure_queue_url is None:
            return
        first, last = records[0], records[-1]
        message = {
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "functionArn": f"arn:aws:lambda:{self._region}:000000000000:function:{self.name}",
                "condition": reason,
                "approximateInvokeCount": self._config.maximum_retry_attempts + 1,
            },
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
            "version": "1.0",
            "timestamp": datetime.now(tz=UTC).isoformat(),
            "KinesisBatchInfo": {
                "shardId": self.shard_id,
                "startSequenceNumber": first["SequenceNumber"],
                "endSequenceNumber": last["SequenceNumber"],
                "approximateArrivalOfFirstRecord": first["ApproximateArrivalTimestamp"].isoformat(),
                "approximateArrivalOfLastRecord": last["ApproximateArrivalTimestamp"].isoformat(),
                "batchSize": len(records),
                "streamArn": self._stream_arn,
            },
        }
        self._sqs.send_message(QueueUrl=self._config.on_failure_queue_url, MessageBody=json.dumps(message))


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
                )
            )

    def _run(self, poller: SqsEventSource | KinesisShardPoller) -> None:
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
            thread = threading.Thread(target=self._run, args=(poller,), name=f"esm-{poller.name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)
