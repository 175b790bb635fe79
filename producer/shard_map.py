"""Which open shard of a stream a partition key lands on, computed the way Kinesis does it."""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

HASH_KEY_SPACE = 2**128
HASH_KEY_BYTES = 16


def hash_key_of(partition_key: str) -> int:
    """Kinesis maps a partition key to the 128-bit integer of its MD5 digest (big-endian)."""
    return int.from_bytes(hashlib.md5(partition_key.encode("utf-8")).digest(), "big")


@dataclass(frozen=True, slots=True)
class Shard:
    shard_id: str
    starting_hash_key: int
    ending_hash_key: int

    @property
    def explicit_hash_key(self) -> str:
        """The key that routes a record to this shard (the ending key would do too, but the emulator rejects it)."""
        return str(self.starting_hash_key)


class ShardMap:
    """The open shards of a stream, sorted by hash range; looks a key up by binary search."""

    def __init__(self, shards: Iterable[Shard]) -> None:
        self.shards: tuple[Shard, ...] = tuple(sorted(shards, key=lambda s: s.starting_hash_key))
        if not self.shards:
            raise ValueError("a shard map needs at least one open shard")
        self._starts = [s.starting_hash_key for s in self.shards]
        self._check_coverage()
        # Big-endian digests compare as bytes the way their integers compare: the hot path skips the int.
        self._start_digests = [start.to_bytes(HASH_KEY_BYTES, "big") for start in self._starts]

    def _check_coverage(self) -> None:
        expected = 0
        for shard in self.shards:
            if shard.starting_hash_key != expected:
                raise ValueError(f"open shards leave a gap or overlap at hash key {expected} ({shard.shard_id})")
            expected = shard.ending_hash_key + 1
        if expected != HASH_KEY_SPACE:
            raise ValueError(f"open shards end at hash key {expected - 1}, not at 2**128 - 1")

    @classmethod
    def from_list_shards(cls, shards: Iterable[Mapping[str, Any]]) -> ShardMap:
        """From ListShards ``Shards`` entries; closed shards (with an ending sequence number) are left out."""
        return cls(
            Shard(
                shard_id=s["ShardId"],
                starting_hash_key=int(s["HashKeyRange"]["StartingHashKey"]),
                ending_hash_key=int(s["HashKeyRange"]["EndingHashKey"]),
            )
            for s in shards
            if "EndingSequenceNumber" not in s.get("SequenceNumberRange", {})
        )

    def shard_for_hash(self, hash_key: int) -> Shard:
        return self.shards[bisect.bisect_right(self._starts, hash_key) - 1]

    def shard_for(self, partition_key: str) -> Shard:
        return self.shard_for_hash(hash_key_of(partition_key))

    def shard_for_key_bytes(self, partition_key: bytes) -> Shard:
        """:meth:`shard_for` of a key already encoded in UTF-8, without converting the digest to an int."""
        digest = hashlib.md5(partition_key, usedforsecurity=False).digest()
        return self.shards[bisect.bisect_right(self._start_digests, digest) - 1]

    @property
    def shard_ids(self) -> frozenset[str]:
        return frozenset(s.shard_id for s in self.shards)


def load_shard_map(kinesis: Any, stream_name: str) -> ShardMap:
    """ListShards with pagination (a stream may have more shards than one page holds)."""
    shards: list[dict[str, Any]] = []
    response = kinesis.list_shards(StreamName=stream_name)
    shards.extend(response["Shards"])
    while token := response.get("NextToken"):
        response = kinesis.list_shards(NextToken=token)
        shards.extend(response["Shards"])
    return ShardMap.from_list_shards(shards)
