"""Shard lookup by the MD5 of the partition key, as Kinesis routes records."""

from __future__ import annotations

import hashlib
from collections import Counter
from typing import Any

import pytest

from producer.shard_map import HASH_KEY_SPACE, Shard, ShardMap, hash_key_of

HALF = HASH_KEY_SPACE // 2


def listed(shard_id: str, start: int, end: int, *, closed: bool = False) -> dict[str, Any]:
    """A ListShards entry in the shape the API returns."""
    sequence = {"StartingSequenceNumber": "0", **({"EndingSequenceNumber": "9"} if closed else {})}
    return {
        "ShardId": shard_id,
        "HashKeyRange": {"StartingHashKey": str(start), "EndingHashKey": str(end)},
        "SequenceNumberRange": sequence,
    }


@pytest.fixture
def two_shards() -> ShardMap:
    return ShardMap.from_list_shards([listed("shard-1", HALF, HASH_KEY_SPACE - 1), listed("shard-0", 0, HALF - 1)])


def test_hash_key_is_the_md5_digest_as_a_big_endian_integer() -> None:
    assert hash_key_of("6c18303c520e:17") == int(hashlib.md5(b"6c18303c520e:17").hexdigest(), 16)
    assert 0 <= hash_key_of("") < HASH_KEY_SPACE


@pytest.mark.parametrize(
    ("hash_key", "shard_id"),
    [(0, "shard-0"), (HALF - 1, "shard-0"), (HALF, "shard-1"), (HASH_KEY_SPACE - 1, "shard-1")],
)
def test_range_boundaries_belong_to_the_right_shard(two_shards: ShardMap, hash_key: int, shard_id: str) -> None:
    assert two_shards.shard_for_hash(hash_key).shard_id == shard_id


def test_partition_keys_go_where_their_hash_falls(two_shards: ShardMap) -> None:
    for key in ("a", "b", "abc:1", "abc:2"):
        expected = "shard-0" if hash_key_of(key) < HALF else "shard-1"
        assert two_shards.shard_for(key).shard_id == expected


def test_record_ids_spread_evenly_over_the_shards(two_shards: ShardMap) -> None:
    # GIVEN 10,000 record ids of one file WHEN mapped THEN each of two shards gets about half
    counts = Counter(two_shards.shard_for(f"6c18303c520e:{row}").shard_id for row in range(1, 10_001))
    assert abs(counts["shard-0"] - 5_000) < 250


def test_the_byte_key_lookup_agrees_with_the_integer_one_on_every_side_of_a_boundary() -> None:
    # GIVEN maps whose boundary is the exact hash of a key, or one above it
    key = "6c18303c520e:17"
    at = hash_key_of(key)
    for start, expected in ((at, "upper"), (at + 1, "lower")):
        shard_map = ShardMap([Shard("lower", 0, start - 1), Shard("upper", start, HASH_KEY_SPACE - 1)])
        # WHEN the key is looked up from its bytes THEN it lands where the integer lookup puts it
        assert shard_map.shard_for_key_bytes(key.encode()).shard_id == expected
        assert shard_map.shard_for(key).shard_id == expected
    # AND on an ordinary map both lookups agree for many record ids
    quarter = HASH_KEY_SPACE // 4
    four = ShardMap(Shard(f"s{i}", i * quarter, (i + 1) * quarter - 1) for i in range(4))
    keys = [f"6c18303c520e:{row}" for row in range(1, 2_001)]
    assert [four.shard_for_key_bytes(k.encode()) for k in keys] == [four.shard_for(k) for k in keys]


def test_explicit_hash_key_is_the_starting_key(two_shards: ShardMap) -> None:
    assert [s.explicit_hash_key for s in two_shards.shards] == ["0", str(HALF)]


def test_closed_shards_are_left_out_after_resharding() -> None:
    # GIVEN the listing after a 2 -> 4 reshard: two closed parents, four open children
    quarter = HASH_KEY_SPACE // 4
    listing = [
        listed("p0", 0, HALF - 1, closed=True),
        listed("p1", HALF, HASH_KEY_SPACE - 1, closed=True),
        *(listed(f"c{i}", i * quarter, (i + 1) * quarter - 1) for i in range(4)),
    ]
    shard_map = ShardMap.from_list_shards(listing)
    assert [s.shard_id for s in shard_map.shards] == ["c0", "c1", "c2", "c3"]
    assert shard_map.shard_for_hash(3 * quarter).shard_id == "c3"


@pytest.mark.parametrize(
    "shards",
    [
        pytest.param([], id="no-shards"),
        pytest.param([Shard("a", 0, HALF - 2), Shard("b", HALF, HASH_KEY_SPACE - 1)], id="gap"),
        pytest.param([Shard("a", 0, HALF - 1)], id="short"),
    ],
)
def test_a_map_that_does_not_cover_the_key_space_is_refused(shards: list[Shard]) -> None:
    with pytest.raises(ValueError, match="shard"):
        ShardMap(shards)
