"""The Kinesis event source mapping, one poller per shard: ordered, checkpointed, retried, bisected and
dead-lettered as AWS does it (see the package docstring for what is and is not modelled)."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from churn_common.aws import client
from infra.local.lambda_service.checkpoints import CheckpointStore, checkpoint_key
from infra.local.lambda_service.context import Handler, LambdaContext
from infra.local.lambda_service.events import (
    AGE_EXCEEDED,
    RETRIES_EXHAUSTED,
    failure_record,
    kinesis_event_record,
    local_function_arn,
)
from infra.local.lambda_service.poller import MappingStats

log = logging.getLogger(__name__)

KINESIS_IDLE_SLEEP_SECONDS = 0.2
KINESIS_RETRY_BASE_SECONDS = 0.2
KINESIS_MAX_BACKOFF_DOUBLINGS = 5
GET_RECORDS_LIMIT = 10_000
MAX_INVOCATION_PAYLOAD_BYTES = 6 * 1024 * 1024  # synchronous invocation payload limit
EVENT_ENVELOPE_BYTES = len('{"Records": []}')
RECORD_SEPARATOR_BYTES = len(", ")


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

    idle_seconds = KINESIS_IDLE_SLEEP_SECONDS

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

    @property
    def partition(self) -> str:
        return self.shard_id

    def reset(self) -> None:
        """After an error the next poll starts again from the checkpoint (iterators may have expired)."""
        self._iterator, self._shard_closed = None, False
        self._pending, self._pending_since = [], None

    def close(self) -> None:
        """Ends a retry back-off at once: the batch is left unacknowledged, for a restart to deliver again."""
        self._stop.set()

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
        size = len(data) + len(json.dumps(shell)) + RECORD_SEPARATOR_BYTES  # base64 needs no escaping in JSON
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
            self.reset()  # stopped mid-retry: a restart resumes from the checkpoint
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
            function_arn=local_function_arn(self.name, region=self._region),
            condition=condition,
            invocations=invocations,
            function_error=function_error,
            at=datetime.fromtimestamp(self._clock(), UTC),
        )
        self._sqs.send_message(QueueUrl=self._config.on_failure_queue_url, MessageBody=json.dumps(message))


def shard_pollers(
    *,
    name: str,
    stream_name: str,
    stream_arn: str,
    handler: Handler,
    config: KinesisMappingConfig,
    checkpoints: CheckpointStore,
    stats: MappingStats | None = None,
) -> list[KinesisShardPoller]:
    """A mapping's pollers, one per shard the stream has now, counting into one ``MappingStats``."""
    stats = MappingStats() if stats is None else stats
    shards = client("kinesis").list_shards(StreamName=stream_name)["Shards"]
    return [
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
        for shard in shards
    ]
