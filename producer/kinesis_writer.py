"""KPL-compatible aggregation per destination shard, PutRecords within the API limits, retries of
exactly the entries that failed, and order kept per shard.

Records are aggregated so that a shard's byte limit binds rather than its record count; each aggregate
holds records of one shard only, sent with that shard's starting hash key as ExplicitHashKey. To keep
order per shard despite PutRecords' partial failures, a call carries at most one aggregate per shard and
a shard's next aggregate waits for the previous one's acknowledgement. One call is in flight at a time on
a worker thread while the caller keeps aggregating; memory stays bounded whatever the number of records.

Not thread-safe: one writer per thread (or per file in the Lambda).

Design notes: docs/producer.md#kinesis-writer (aggregate size and its trade-offs)
"""

from __future__ import annotations

import contextvars
import random
import time
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import Any

from churn_common.errors import PermanentError, PipelineError, TransientError
from producer.aggregation import Aggregate
from producer.shard_map import Shard, ShardMap, load_shard_map

DEFAULT_AGGREGATE_BYTES = 256 * 1024  # see "Aggregate size" above; the KPL allows up to 1 MiB
MAX_RECORDS_PER_PUT = 500
MAX_BYTES_PER_PUT = 5 * 1024 * 1024
MAX_BYTES_PER_RECORD = 1024 * 1024
MAX_QUEUED_BYTES = MAX_BYTES_PER_PUT  # enough to fill a call while another one is in flight
QUEUED_AGGREGATES_PER_SHARD = 2  # the next one to go and one more: a deeper queue only holds memory
RETRYABLE_ERRORS = frozenset({"ProvisionedThroughputExceededException", "InternalFailure", "KMSThrottlingException"})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Jittered exponential backoff ("full jitter"): attempt n waits uniformly in [0, min(cap, base * 2**n)].

    ``max_attempts`` bounds the PutRecords attempts of any one entry; past it the writer raises.
    """

    max_attempts: int = 8
    base_delay_seconds: float = 0.1
    max_delay_seconds: float = 5.0

    def delay(self, attempt: int, *, jitter: Callable[[], float] = random.random) -> float:
        return jitter() * min(self.max_delay_seconds, self.base_delay_seconds * 2**attempt)


DEFAULT_RETRY = RetryPolicy()


@dataclass(slots=True)
class WriteStats:
    user_records: int = 0
    kinesis_records: int = 0
    put_calls: int = 0
    bytes: int = 0
    retried_entries: int = 0
    shard_map_refreshes: int = 0

    @property
    def bytes_per_user_record(self) -> float:
        return self.bytes / self.user_records if self.user_records else 0.0


class KinesisPutError(PipelineError, RuntimeError):
    """Entries Kinesis did not accept after every retry (or could never accept): the caller must fail.
    Callers catch this; which subclass it is says whether a later retry of the file can help."""

    def __init__(self, message: str, *, failed_entries: int, error_codes: Counter[str]) -> None:
        codes = ", ".join(f"{code} x{n}" for code, n in error_codes.most_common())
        super().__init__(f"{message}: {failed_entries} entries not accepted ({codes})")
        self.failed_entries = failed_entries
        self.error_codes = error_codes


class KinesisEntriesRefusedError(KinesisPutError, PermanentError):
    """Entries refused with codes that retrying cannot fix (not in ``RETRYABLE_ERRORS``: a denied KMS key,
    say): the same records are refused the same way until someone changes the stream's setup."""


class KinesisRetriesExhaustedError(KinesisPutError, TransientError):
    """Entries still throttled (or failing inside Kinesis) when the retry bound was reached: the stream may
    well accept them later."""


@dataclass(slots=True)
class PutEntry:
    """One Kinesis record to put: an aggregate of ``user_records`` customer records bound for one shard."""

    data: bytes
    partition_key: str
    explicit_hash_key: str
    shard_id: str
    user_records: int
    failures: int = 0

    @property
    def size(self) -> int:
        return len(self.data) + len(self.partition_key.encode("utf-8"))

    def request(self) -> dict[str, Any]:
        return {"Data": self.data, "PartitionKey": self.partition_key, "ExplicitHashKey": self.explicit_hash_key}


@dataclass(slots=True)
class ShardQueues:
    """Entries waiting to be put, first in first out per shard; a round takes at most one head per shard."""

    queues: dict[str, deque[PutEntry]] = field(default_factory=dict)
    bytes: int = 0

    def __bool__(self) -> bool:
        return self.bytes > 0

    def push(self, entry: PutEntry) -> None:
        self.queues.setdefault(entry.shard_id, deque()).append(entry)
        self.bytes += entry.size

    def push_front(self, entry: PutEntry) -> None:
        self.queues.setdefault(entry.shard_id, deque()).appendleft(entry)
        self.bytes += entry.size

    def next_round(
        self, *, max_entries: int = MAX_RECORDS_PER_PUT, max_bytes: int = MAX_BYTES_PER_PUT
    ) -> list[PutEntry]:
        """The heads of the shards' queues that fit one call. Shards are visited least recently served
        first, so with more shards than one call holds every shard still gets its turn."""
        round_: list[PutEntry] = []
        size = 0
        for shard_id, queue in list(self.queues.items()):
            if len(round_) == max_entries:
                break
            if not queue or (round_ and size + queue[0].size > max_bytes):
                continue
            head = queue.popleft()
            round_.append(head)
            size += head.size
            self.bytes -= head.size
            self.queues[shard_id] = self.queues.pop(shard_id)  # to the back of the line
        return round_


@dataclass(slots=True)
class _InFlight:
    future: Future[dict[str, Any]]
    entries: list[PutEntry]


class KinesisWriter:
    """Buffers customer records into per-shard aggregates and puts them; :meth:`flush` sends the rest.

    When :meth:`flush` returns, every record added so far has been acknowledged by Kinesis. A failure
    that outlasts the retries raises :class:`KinesisPutError` (from :meth:`add` or :meth:`flush`);
    nothing is ever dropped silently. After an error the writer must not be used again.
    """

    def __init__(
        self,
        *,
        stream_name: str,
        kinesis: Any,
        shard_map: ShardMap | None = None,
        max_aggregate_bytes: int = DEFAULT_AGGREGATE_BYTES,
        max_queued_bytes: int = MAX_QUEUED_BYTES,
        retry: RetryPolicy = DEFAULT_RETRY,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        if not 0 < max_aggregate_bytes <= MAX_BYTES_PER_RECORD - 256:
            raise ValueError(f"max_aggregate_bytes must be in (0, {MAX_BYTES_PER_RECORD - 256}]")
        self.stream_name = stream_name
        self.stats = WriteStats()
        self._kinesis = kinesis
        self._shard_map = shard_map
        self._max_aggregate_bytes = max_aggregate_bytes
        self._max_queued_bytes = max_queued_bytes
        self._retry, self._sleep, self._jitter = retry, sleep, jitter
        self._aggregates: dict[str, tuple[Shard, Aggregate]] = {}
        self._queues = ShardQueues()
        self._in_flight: _InFlight | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._stale = False

    @property
    def shard_map(self) -> ShardMap:
        if self._shard_map is None:
            self._shard_map = load_shard_map(self._kinesis, self.stream_name)
        return self._shard_map

    def refresh_shard_map(self) -> ShardMap:
        """Re-read the shards (after resharding). Everything buffered is sent first, as it is: Kinesis
        routes each aggregate by its hash key to whichever shard now owns it, and no aggregate of the
        new layout can overtake one of the old."""
        self._send_all()
        self._shard_map = load_shard_map(self._kinesis, self.stream_name)
        self._stale = False
        self.stats.shard_map_refreshes += 1
        return self._shard_map

    def add(self, partition_key: str, data: bytes) -> None:
        if self._stale:
            self.refresh_shard_map()
        key = partition_key.encode("utf-8")
        shard = self.shard_map.shard_for_key_bytes(key)
        open_ = self._aggregates.get(shard.shard_id)
        if open_ is None:
            open_ = self._aggregates[shard.shard_id] = (shard, Aggregate(max_bytes=self._max_aggregate_bytes))
        if not open_[1].add(key, data):
            self._enqueue(open_[1], shard)
            aggregate = Aggregate(max_bytes=self._max_aggregate_bytes)
            self._aggregates[shard.shard_id] = (shard, aggregate)
            aggregate.add(key, data)
        in_flight = self._in_flight
        if in_flight is not None and in_flight.future.done():
            self._collect()
        if self._in_flight is None and self._queues:
            self._submit()

    def flush(self) -> WriteStats:
        """Send everything buffered and wait for it; returns the totals of this writer so far."""
        try:
            self._send_all()
        finally:
            self.close()
        return replace(self.stats)

    def close(self) -> None:
        """Stop the worker thread (a later :meth:`add` starts a new one)."""
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def __enter__(self) -> KinesisWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _send_all(self) -> None:
        for shard, aggregate in self._aggregates.values():
            if len(aggregate):
                self._enqueue(aggregate, shard)
        self._aggregates.clear()
        while self._in_flight is not None or self._queues:
            if self._in_flight is not None:
                self._collect()
            if self._queues:
                self._submit()

    def _enqueue(self, aggregate: Aggregate, shard: Shard) -> None:
        self._queues.push(
            PutEntry(
                data=aggregate.to_bytes(),
                partition_key=aggregate.partition_key,
                explicit_hash_key=shard.explicit_hash_key,
                shard_id=shard.shard_id,
                user_records=len(aggregate),
            )
        )
        limit = min(
            self._max_queued_bytes,
            QUEUED_AGGREGATES_PER_SHARD * len(self.shard_map.shards) * self._max_aggregate_bytes,
        )
        while self._queues.bytes > limit:
            if self._in_flight is not None:
                self._collect()
            self._submit()

    def _submit(self) -> None:
        entries = self._queues.next_round()
        failures = max(e.failures for e in entries)
        delay = self._retry.delay(failures, jitter=self._jitter) if failures else 0.0
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kinesis-put")
        # In the caller's context, as if called inline (the local stack signs each call as the caller's role).
        put = contextvars.copy_context().run
        self._in_flight = _InFlight(self._executor.submit(put, self._put, entries, delay), entries)

    def _put(self, entries: list[PutEntry], delay: float) -> dict[str, Any]:
        if delay:
            self._sleep(delay)
        return self._kinesis.put_records(StreamName=self.stream_name, Records=[e.request() for e in entries])

    def _collect(self) -> None:
        """Wait for the call in flight; acknowledged entries are done, failed ones go back to the head
        of their shard's queue (or raise once retrying cannot help or the bound is reached)."""
        assert self._in_flight is not None
        in_flight, self._in_flight = self._in_flight, None
        response = in_flight.future.result()
        self.stats.put_calls += 1
        failed: list[PutEntry] = []
        codes: Counter[str] = Counter()
        for entry, result in zip(in_flight.entries, response["Records"], strict=True):
            code = result.get("ErrorCode")
            if code is None:
                self._acknowledged(entry, result["ShardId"])
            else:
                entry.failures += 1
                failed.append(entry)
                codes[code] += 1
        if not failed:
            return
        if not set(codes) <= RETRYABLE_ERRORS:
            raise KinesisEntriesRefusedError(
                "PutRecords failed with errors that retrying cannot fix", **_lost(failed, codes)
            )
        attempts = max(e.failures for e in failed)
        if attempts >= self._retry.max_attempts:
            raise KinesisRetriesExhaustedError(
                f"PutRecords still failing after {attempts} attempts", **_lost(failed, codes)
            )
        self.stats.retried_entries += len(failed)
        for entry in failed:
            self._queues.push_front(entry)

    def _acknowledged(self, entry: PutEntry, shard_id: str) -> None:
        self.stats.user_records += entry.user_records
        self.stats.kinesis_records += 1
        self.stats.bytes += entry.size
        if shard_id != entry.shard_id:
            self._stale = True  # the stream was resharded: aggregate by the new shards from now on


def _lost(entries: list[PutEntry], codes: Counter[str]) -> dict[str, Any]:
    return {"failed_entries": len(entries), "error_codes": codes}
