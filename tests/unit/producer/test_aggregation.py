"""The producer's own KPL aggregate encoder against aws-kinesis-agg, the reference: the same bytes, the
same split points for distinct keys, and user records that every decoder in use reads back unchanged."""

from __future__ import annotations

import base64
import random
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from aws_kinesis_agg.aggregator import AggRecord
from aws_kinesis_agg.deaggregator import iter_deaggregate_records

from producer.aggregation import FRAME_BYTES, Aggregate, RecordTooLargeError, encode_varint
from stream_scorer.kinesis_event import unpack_aggregate

UserRecord = tuple[str, bytes]
PROPERTY_CASES = 60


@dataclass(frozen=True, slots=True)
class Built:
    """One finished aggregate: what PutRecords would get."""

    partition_key: str
    data: bytes
    records: tuple[UserRecord, ...]


def build_ours(records: list[UserRecord], *, max_bytes: int) -> list[Built]:
    out: list[Built] = []
    aggregate, held = Aggregate(max_bytes=max_bytes), []
    for key, data in records:
        if not aggregate.add(key.encode(), data):
            out.append(Built(aggregate.partition_key, aggregate.to_bytes(), tuple(held)))
            aggregate, held = Aggregate(max_bytes=max_bytes), []
            assert aggregate.add(key.encode(), data)
        held.append((key, data))
    out.append(Built(aggregate.partition_key, aggregate.to_bytes(), tuple(held)))
    return out


def build_reference(records: list[UserRecord], *, max_bytes: int) -> list[Built]:
    out: list[Built] = []
    aggregate, held = AggRecord(max_bytes), []
    for key, data in records:
        if not aggregate.add_user_record(key, data):
            partition_key, _, body = aggregate.get_contents()
            out.append(Built(partition_key, body, tuple(held)))
            aggregate, held = AggRecord(max_bytes), []
            assert aggregate.add_user_record(key, data)
        held.append((key, data))
    partition_key, _, body = aggregate.get_contents()
    out.append(Built(partition_key, body, tuple(held)))
    return out


def deaggregated(built: list[Built]) -> list[tuple[str, str | None, bytes]]:
    """(partition key, explicit hash key, data) of every user record, as aws-kinesis-agg reads GetRecords output."""
    records = [
        {
            "Data": b.data,
            "PartitionKey": b.partition_key,
            "SequenceNumber": str(i),
            "ApproximateArrivalTimestamp": datetime.now(tz=UTC),
        }
        for i, b in enumerate(built)
    ]
    users = list(iter_deaggregate_records(records, data_format="Boto3"))
    assert all(u["kinesis"]["aggregated"] for u in users)
    return [
        (u["kinesis"]["partitionKey"], u["kinesis"]["explicitHashKey"], base64.b64decode(u["kinesis"]["data"]))
        for u in users
    ]


def random_payload(rng: random.Random) -> bytes:
    return rng.randbytes(rng.choice([0, 1, 75, 90, 127, 128, 300, rng.randint(0, 2_000)]))


def random_records(rng: random.Random) -> list[UserRecord]:
    """Keys drawn with repeats (partition key table reuse), empty, non-ASCII and long; payloads of odd sizes."""
    keys = [f"{rng.getrandbits(48):012x}:{row}" for row in range(rng.randint(1, 400))]
    keys += ["", "ключ:1", "clé-é:2", "k" * 256]
    return [(rng.choice(keys), random_payload(rng)) for _ in range(rng.randint(1, 3_000))]


def record_ids(rng: random.Random) -> list[UserRecord]:
    """What the producer sends: distinct record ids (source id:row) with customer-record-sized payloads."""
    source_id = f"{rng.getrandbits(48):012x}"
    return [(f"{source_id}:{row}", random_payload(rng)) for row in range(1, rng.randint(2, 6_000))]


@pytest.mark.parametrize("seed", range(PROPERTY_CASES))
def test_aggregates_are_the_bytes_aws_kinesis_agg_makes_and_decode_to_the_same_records(seed: int) -> None:
    # GIVEN random user records (keys repeated, empty, non-ASCII, long) and a random aggregate size
    rng = random.Random(seed)
    records = random_records(rng)
    max_bytes = rng.choice([2_400, 5_000, 51_200, 262_144, 1_048_576])
    # WHEN aggregated by our encoder
    ours = build_ours(records, max_bytes=max_bytes)
    # THEN each aggregate is byte for byte what aws-kinesis-agg makes of the same user records, within the size
    for built in ours:
        assert build_reference(list(built.records), max_bytes=1_048_576) == [built]
        assert len(built.data) <= max_bytes
    # AND aws-kinesis-agg's deaggregator gives back every key and payload in order, with no per-record hash key
    assert deaggregated(ours) == [(key, None, data) for key, data in records]
    # AND so does the scorer's own unpacker, aggregate by aggregate
    unpacked = [payload for b in ours for payload in unpack_aggregate(b.data) or [b.data]]
    assert unpacked == [data for _, data in records]


@pytest.mark.parametrize("seed", range(PROPERTY_CASES))
def test_record_ids_are_split_into_aggregates_exactly_where_aws_kinesis_agg_splits_them(seed: int) -> None:
    # GIVEN distinct keys, as the producer's record ids are, and a random aggregate size
    rng = random.Random(seed)
    records = record_ids(rng)
    max_bytes = rng.choice([2_400, 5_000, 51_200, 262_144])
    # WHEN aggregated by both THEN every aggregate holds the same records and the same bytes
    # (with repeated keys aws-kinesis-agg counts a key again in its size estimate and closes earlier;
    # ours counts it once, so there the split points may differ, never the content)
    assert build_ours(records, max_bytes=max_bytes) == build_reference(records, max_bytes=max_bytes)


def test_an_aggregate_takes_a_record_that_fills_it_exactly_and_refuses_one_byte_more() -> None:
    # GIVEN one record of 100 bytes in an aggregate, and the exact room left after it
    first = Aggregate(max_bytes=10_000)
    assert first.add(b"a:1", b"x" * 100)
    # (a second record adds its key entry: tag, length, 3 bytes; and the record: tag, 2-byte length,
    # index tag, index, data tag, 2-byte data length, data)
    room = 10_000 - first.size - (1 + 1 + 3) - (1 + 2 + 1 + 1 + 1 + 2)
    exact = Aggregate(max_bytes=10_000)
    over = Aggregate(max_bytes=10_000)
    for aggregate in (exact, over):
        aggregate.add(b"a:1", b"x" * 100)
    # WHEN a record that fills it to the byte is added, and elsewhere one a byte larger
    # THEN the first fits exactly, the second is refused and leaves the aggregate as it was
    assert exact.add(b"a:2", b"y" * room)
    assert exact.size == 10_000 == len(exact.to_bytes())
    assert not over.add(b"a:2", b"y" * (room + 1))
    assert len(over) == 1
    assert over.to_bytes() == first.to_bytes()
    # AND aws-kinesis-agg draws the line at the same byte
    reference = AggRecord(10_000)
    reference.add_user_record("a:1", b"x" * 100)
    assert not reference.add_user_record("a:2", b"y" * (room + 1))
    assert reference.add_user_record("a:2", b"y" * room)
    assert reference.get_contents()[2] == exact.to_bytes()


def test_beyond_the_varint_cache_indexes_and_lengths_are_still_encoded_as_protobuf_does() -> None:
    # GIVEN more than 16,384 distinct keys (three-byte key indexes) and a payload of 20,000 bytes
    records = [(f"k{i}", b"d") for i in range(20_000)] + [("big", b"z" * 20_000)]
    # WHEN aggregated in one 1 MB aggregate THEN the bytes are the reference's and decode back
    ours = build_ours(records, max_bytes=1_048_576)
    assert len(ours) == 1
    assert ours == build_reference(records, max_bytes=1_048_576)
    assert deaggregated(ours) == [(key, None, data) for key, data in records]


def test_a_record_too_large_for_an_empty_aggregate_raises_instead_of_being_lost() -> None:
    # GIVEN an empty aggregate and a record whose own encoding is a few bytes short of the limit, which
    # aws-kinesis-agg neither raises for nor accepts (add_user_record returns False on an empty aggregate)
    data = b"x" * (1_000 - FRAME_BYTES)
    assert AggRecord(1_000).add_user_record("k", data) is False
    # WHEN added to ours THEN it raises, naming the size, so the caller fails loudly
    with pytest.raises(RecordTooLargeError, match=f"{len(data)} bytes"):
        Aggregate(max_bytes=1_000).add(b"k", data)


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (0, b"\x00"),
        (1, b"\x01"),
        (127, b"\x7f"),
        (128, b"\x80\x01"),
        (300, b"\xac\x02"),
        (16_383, b"\xff\x7f"),
        (16_384, b"\x80\x80\x01"),
        (2**63, b"\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01"),
    ],
)
def test_varints_are_protobuf_base_128(value: int, encoded: bytes) -> None:
    assert encode_varint(value) == encoded


def test_the_aggregate_is_named_by_its_first_key_and_empty_until_a_record_is_added() -> None:
    aggregate = Aggregate(max_bytes=1_000)
    assert (len(aggregate), aggregate.size) == (0, FRAME_BYTES)
    aggregate.add("ключ:1".encode(), b"a")
    aggregate.add(b"other:2", b"b")
    assert aggregate.partition_key == "ключ:1"
    assert len(aggregate) == 2
