"""KPL-compatible aggregation per destination shard, PutRecords within the API limits, and retries of
exactly the entries that failed.

A customer record is ~80 bytes; sent one per Kinesis record, a shard would be capped by its 1,000
records/s. Packed into aggregates of up to ``max_aggregate_bytes`` the byte limit (1 MB/s) binds
instead. Kinesis routes an aggregate by its own key, so every aggregate holds records of one shard
only and carries that shard's starting hash key as ExplicitHashKey.

Not thread-safe: one writer per thread (or per file in the Lambda).
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from aws_kinesis_agg.aggregator import AggRecord, RecordAggregator

from producer.shard_map import Shard, ShardMap, load_shard_map

DEFAULT_AGGREGATE_BYTES = 50 * 1024  # the KPL's default AggregationMaxSize
MAX_RECORDS_PER_PUT = 500
MAX_BYTES_PER_PUT = 5 * 1024 * 1024
MAX_BYTES_PER_RECORD = 1024 * 1024
RETRYABLE_ERRORS = frozenset({"ProvisionedThroughputExceededException", "InternalFailure", "KMSThrottlingException"})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Jittered exponential backoff ("full jitter"): attempt n waits uniformly in [0, min(cap, base * 2**n)]."""

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


class KinesisPutError(RuntimeError):
    """Entries Kinesis did not accept after every retry (or could never accept): the caller must fail."""

    def __init__(self, message: str, *, failed_entries: int, error_codes: Counter[str]) -> None:
        codes = ", ".join(f"{code} x{n}" for code, n in error_codes.most_common())
        super().__init__(f"{message}: {failed_entries} entries not accepted ({codes})")
        self.failed_entries = failed_entries
        self.error_codes = error_codes


@dataclass(frozen=True, slots=True)
class _Entry:
    """One Kinesis record to put: an aggregate of ``user_records`` customer records bound for one shard."""

    data: bytes
    partition_key: str
    explicit_hash_key: str
    shard_id: str
    user_records: int

    @property
    def size(self) -> int:
        return len(self.data) + len(self.partition_key.encode("utf-8"))

    def request(self) -> dict[str, Any]:
        return {"Data": self.data, "PartitionKey": self.partition_key, "ExplicitHashKey": self.explicit_hash_key}


@dataclass(slots=True)
class _Pending:
    entries: list[_Entry] = field(default_factory=list)
    size: int = 0

    def fits(self, entry: _Entry) -> bool:
        return len(self.entries) < MAX_RECORDS_PER_PUT and self.size + entry.size <= MAX_BYTES_PER_PUT

    def add(self, entry: _Entry) -> None:
        self.entries.append(entry)
        self.size += entry.size

    def take(self) -> list[_Entry]:
        entries, self.entries, self.size = self.entries, [], 0
        return entries


class KinesisWriter:
    """Buffers customer records into per-shard aggregates and puts them; :meth:`flush` sends the rest.

    When :meth:`flush` returns, every record added so far has been acknowledged by Kinesis. A failure
    that outlasts the retries raises :class:`KinesisPutError`; nothing is ever dropped silently.
    """

    def __init__(
        self,
        *,
        stream_name: str,
        kinesis: Any,
        shard_map: ShardMap | None = None,
        max_aggregate_bytes: int = DEFAULT_AGGREGATE_BYTES,
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
        self._retry, self._sleep, self._jitter = retry, sleep, jitter
        self._aggregators: dict[str, tuple[Shard, RecordAggregator]] = {}
        self._pending = _Pending()
        self._stale = False

    @property
    def shard_map(self) -> ShardMap:
        if self._shard_map is None:
            self._shard_map = load_shard_map(self._kinesis, self.stream_name)
        return self._shard_map

    def refresh_shard_map(self) -> ShardMap:
        """Re-read the shards (after resharding). Open aggregates are queued as they are: Kinesis still
        routes each by its hash key, to whichever shard now owns it."""
        self._drain_aggregators()
        self._shard_map = load_shard_map(self._kinesis, self.stream_name)
        self._stale = False
        self.stats.shard_map_refreshes += 1
        return self._shard_map

    def add(self, partition_key: str, data: bytes) -> None:
        if self._stale:
            self.refresh_shard_map()
        shard = self.shard_map.shard_for(partition_key)
        if shard.shard_id not in self._aggregators:
            self._aggregators[shard.shard_id] = (shard, RecordAggregator(max_size=self._max_aggregate_bytes))
        full = self._aggregators[shard.shard_id][1].add_user_record(partition_key, data)
        if full is not None:
            self._enqueue(full, shard)

    def flush(self) -> WriteStats:
        """Send everything buffered; returns the totals of this writer so far."""
        self._drain_aggregators()
        self._put(self._pending.take())
        return replace(self.stats)

    def _drain_aggregators(self) -> None:
        for shard, aggregator in self._aggregators.values():
            record = aggregator.clear_and_get()
            if record is not None:
                self._enqueue(record, shard)
        self._aggregators.clear()

    def _enqueue(self, record: AggRecord, shard: Shard) -> None:
        partition_key, _, data = record.get_contents()
        entry = _Entry(
            data=data,
            partition_key=partition_key,
            explicit_hash_key=shard.explicit_hash_key,
            shard_id=shard.shard_id,
            user_records=record.get_num_user_records(),
        )
        if not self._pending.fits(entry):
            self._put(self._pending.take())
        self._pending.add(entry)

    def _put(self, entries: list[_Entry]) -> None:
        attempt = 0
        while entries:
            response = self._kinesis.put_records(StreamName=self.stream_name, Records=[e.request() for e in entries])
            self.stats.put_calls += 1
            failed: list[_Entry] = []
            codes: Counter[str] = Counter()
            for entry, result in zip(entries, response["Records"], strict=True):
                code = result.get("ErrorCode")
                if code is None:
                    self._acknowledged(entry, result["ShardId"])
                else:
                    failed.append(entry)
                    codes[code] += 1
            if not failed:
                return
            if not set(codes) <= RETRYABLE_ERRORS:
                raise KinesisPutError("PutRecords failed with errors that retrying cannot fix", **_lost(failed, codes))
            attempt += 1
            if attempt >= self._retry.max_attempts:
                raise KinesisPutError(f"PutRecords still failing after {attempt} attempts", **_lost(failed, codes))
            self.stats.retried_entries += len(failed)
            self._sleep(self._retry.delay(attempt, jitter=self._jitter))
            entries = failed

    def _acknowledged(self, entry: _Entry, shard_id: str) -> None:
        self.stats.user_records += entry.user_records
        self.stats.kinesis_records += 1
        self.stats.bytes += entry.size
        if shard_id != entry.shard_id:
            self._stale = True  # the stream was resharded: aggregate by the new shards from now on


def _lost(entries: list[_Entry], codes: Counter[str]) -> dict[str, Any]:
    return {"failed_entries": len(entries), "error_codes": codes}
