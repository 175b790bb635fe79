"""The Kinesis writer on the emulator: routing as Kinesis does it, per-shard aggregates, API limits,
resharding, and failures that are retried or raised but never dropped."""

from __future__ import annotations

import base64
import random
from collections import Counter
from typing import Any

import pytest
from aws_kinesis_agg.deaggregator import iter_deaggregate_records

from churn_common.aws import client
from churn_common.wire import encode
from producer.kinesis_writer import MAX_BYTES_PER_PUT, MAX_RECORDS_PER_PUT, KinesisPutError, KinesisWriter, RetryPolicy
from producer.shard_map import HASH_KEY_SPACE, Shard, ShardMap, load_shard_map
from tests.factories import customer_record
from tests.integration.producer.conftest import assert_in_order_per_shard, read_stream, user_keys

pytestmark = pytest.mark.integration

FAST_RETRY = RetryPolicy(max_attempts=3, base_delay_seconds=0.001, max_delay_seconds=0.01)
FAST_RETRY_MANY = RetryPolicy(max_attempts=20, base_delay_seconds=0.001, max_delay_seconds=0.01)
WIDE_STREAM = "wide-stream"


def writer_for(aws: Any, *, stream_name: str | None = None, **options: Any) -> KinesisWriter:
    return KinesisWriter(stream_name=stream_name or aws.stream_name, kinesis=client("kinesis"), **options)


def add_records(writer: KinesisWriter, rows: range, *, source: str = "s3://b/data/input/w.csv") -> list[str]:
    ids = []
    for row in rows:
        record = customer_record(row=row, source=source)
        writer.add(record.record_id, encode(record))
        ids.append(record.record_id)
    return ids


def raw_user_records(stream_name: str) -> list[tuple[str, str, bytes]]:
    """(shard id, partition key, data) of every user record, without decoding the data."""
    kinesis = client("kinesis")
    out = []
    for shard in kinesis.list_shards(StreamName=stream_name)["Shards"]:
        iterator = kinesis.get_shard_iterator(
            StreamName=stream_name, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        response = kinesis.get_records(ShardIterator=iterator, Limit=10_000)
        for user in iter_deaggregate_records(response["Records"], data_format="Boto3"):
            data = base64.b64decode(user["kinesis"]["data"])
            out.append((shard["ShardId"], user["kinesis"]["partitionKey"], data))
    return out


def test_the_emulator_routes_keys_where_the_shard_map_predicts(aws) -> None:
    # GIVEN the stream's shard map and 200 record ids put one by one without an explicit hash key
    shard_map = load_shard_map(client("kinesis"), aws.stream_name)
    keys = [f"6c18303c520e:{row}" for row in range(1, 201)]
    results = client("kinesis").put_records(
        StreamName=aws.stream_name, Records=[{"Data": b"x", "PartitionKey": key} for key in keys]
    )["Records"]
    # THEN Kinesis put each one on the shard the MD5 mapping names
    assert [r["ShardId"] for r in results] == [shard_map.shard_for(key).shard_id for key in keys]


def test_each_aggregate_holds_only_records_of_its_shard_and_names_it_by_hash_key(aws, put_records_faults) -> None:
    # GIVEN small aggregates, so that a few thousand records make many of them, and a recorder of the calls
    recorder = put_records_faults()
    writer = writer_for(aws, max_aggregate_bytes=2048)
    ids = add_records(writer, range(1, 3001))
    # WHEN flushed
    stats = writer.flush()
    # THEN every record is on the stream once, on the shard its own key maps to
    stream = read_stream(aws.stream_name)
    assert Counter(stream.record_ids) == Counter(ids)
    assert all(writer.shard_map.shard_for(r.partition_key).shard_id == r.shard_id for r in stream.records)
    assert len({r.shard_id for r in stream.records}) == 2
    # AND every entry put carried its shard's starting hash key, and only keys of that shard
    starts = {str(s.starting_hash_key): s.shard_id for s in writer.shard_map.shards}
    entries = [entry for request in recorder.requests for entry in request]
    assert len(entries) == stats.kinesis_records
    for entry in entries:
        shard_ids = {writer.shard_map.shard_for(key).shard_id for key in user_keys(entry)}
        assert shard_ids == {starts[entry["ExplicitHashKey"]]}
    # AND the counts describe what was sent
    assert (stats.user_records, stats.kinesis_records, stats.bytes) == (
        3000,
        stream.kinesis_records,
        stream.kinesis_bytes,
    )
    assert stats.kinesis_records > 100


def test_put_records_calls_stay_within_500_entries_and_5_mib_with_one_entry_per_shard(aws, put_records_faults) -> None:
    # GIVEN a stream of 600 shards (more than one call can serve) and a recorder of every PutRecords call
    kinesis = client("kinesis")
    kinesis.create_stream(StreamName=WIDE_STREAM, ShardCount=600)
    recorder = put_records_faults()
    # WHEN many small aggregates are written, then a few huge ones
    many = writer_for(aws, stream_name=WIDE_STREAM, max_aggregate_bytes=512)
    add_records(many, range(1, 12_001))
    many.flush()
    huge = writer_for(aws, stream_name=WIDE_STREAM, max_aggregate_bytes=1_000_000)
    blobs = [bytes([i]) * 100_000 for i in range(70)]
    for i, blob in enumerate(blobs):
        huge.add(f"blob-{i}", blob)
    huge.flush()
    # THEN no call broke a limit, both limits were reached, no call held two entries of one shard
    assert max(c["entries"] for c in recorder.calls) == MAX_RECORDS_PER_PUT
    assert all(c["bytes"] <= MAX_BYTES_PER_PUT for c in recorder.calls)
    assert max(c["bytes"] for c in recorder.calls) > MAX_BYTES_PER_PUT - 1_000_000
    assert all(len({e["ExplicitHashKey"] for e in r}) == len(r) for r in recorder.requests)
    # AND everything arrived
    stored = raw_user_records(WIDE_STREAM)
    assert len(stored) == 12_000 + 70
    assert sorted(data for _, key, data in stored if key.startswith("blob-")) == sorted(blobs)


def test_throttled_and_failed_entries_are_retried_and_arrive_once_in_order_per_shard(aws, put_records_faults) -> None:
    # GIVEN Kinesis failing about a third of the entries of the first 40 calls, at random positions
    chance = random.Random(5)

    def flaky(call: int, _position: int, _entry: dict[str, Any]) -> str | None:
        if call < 40 and chance.random() < 0.35:
            return chance.choice(["ProvisionedThroughputExceededException", "InternalFailure"])
        return None

    faults = put_records_faults(flaky)
    slept: list[float] = []
    writer = writer_for(aws, max_aggregate_bytes=1024, retry=FAST_RETRY_MANY, sleep=slept.append)
    # WHEN 4,000 records are written
    ids = add_records(writer, range(1, 4001))
    stats = writer.flush()
    # THEN failures did happen, were retried with backoff, and were retried alone
    failed = sum(c["failed"] for c in faults.calls)
    assert failed > 20
    assert stats.retried_entries == failed
    assert slept
    assert all(0 <= s <= FAST_RETRY_MANY.max_delay_seconds for s in slept)
    stream = read_stream(aws.stream_name)
    assert stream.kinesis_records == sum(c["entries"] - c["failed"] for c in faults.calls)
    # AND every record is on the stream exactly once, and each shard holds its records in the order written
    assert Counter(stream.record_ids) == Counter(ids)
    assert_in_order_per_shard(stream.records)


def test_a_stale_shard_map_is_noticed_and_aggregation_follows_the_current_shards(aws) -> None:
    # GIVEN a writer holding the map of an earlier layout (four shards that no longer exist), while the
    # stream has two. (The emulator keeps writing to closed parents after UpdateShardCount, so the
    # reshard itself cannot be replayed here; what matters is the writer's reaction to Kinesis's answers.)
    quarter = HASH_KEY_SPACE // 4
    stale = ShardMap(Shard(f"shardId-old-{i}", i * quarter, (i + 1) * quarter - 1) for i in range(4))
    writer = writer_for(aws, shard_map=stale, max_aggregate_bytes=4096)
    # WHEN records are written with the stale map, then more after the first acknowledgements
    ids = add_records(writer, range(1, 1001))
    writer.flush()
    ids += add_records(writer, range(1001, 2001))
    writer.flush()
    # THEN the writer noticed from the shard ids Kinesis answered with and re-read the map once
    assert writer.stats.shard_map_refreshes == 1
    assert writer.shard_map.shard_ids == {
        s["ShardId"] for s in client("kinesis").list_shards(StreamName=aws.stream_name)["Shards"]
    }
    # AND nothing was lost or duplicated, and the later records sit on the shards the current map predicts
    stream = read_stream(aws.stream_name)
    assert Counter(stream.record_ids) == Counter(ids)
    later = [r for r in stream.records if r.fields[2] > 1000]
    assert all(writer.shard_map.shard_for(r.partition_key).shard_id == r.shard_id for r in later)


def test_after_a_real_reshard_the_refreshed_map_holds_the_open_children_and_aggregates_follow_them(
    aws, put_records_faults
) -> None:
    # GIVEN a writer holding the map of the stream's two shards, and then the stream resharded to four
    kinesis = client("kinesis")
    writer = writer_for(aws, max_aggregate_bytes=2048)
    old_ids = writer.shard_map.shard_ids
    kinesis.update_shard_count(StreamName=aws.stream_name, TargetShardCount=4, ScalingType="UNIFORM_SCALING")
    listing = kinesis.list_shards(StreamName=aws.stream_name)["Shards"]
    recorder = put_records_faults()
    # WHEN the writer re-reads the map and writes
    shard_map = writer.refresh_shard_map()
    add_records(writer, range(1, 2001))
    writer.flush()
    # THEN the map holds the four open children only (the closed parents are listed but left out)
    closed = {s["ShardId"] for s in listing if "EndingSequenceNumber" in s["SequenceNumberRange"]}
    assert closed == old_ids
    assert shard_map.shard_ids == {s["ShardId"] for s in listing} - closed
    assert len(shard_map.shards) == 4
    # AND every aggregate put is addressed to one child by its starting hash key and holds only its keys
    starts = {str(s.starting_hash_key): s.shard_id for s in shard_map.shards}
    entries = [entry for request in recorder.requests for entry in request]
    assert {starts[e["ExplicitHashKey"]] for e in entries} == shard_map.shard_ids
    for entry in entries:
        assert {shard_map.shard_for(key).shard_id for key in user_keys(entry)} == {starts[entry["ExplicitHashKey"]]}
    # (Where the emulator stores them is not asserted: moto 5.2 keeps routing puts to the closed parents,
    # so the automatic detection of a reshard is shown by the stale-map test above instead.)


def test_refresh_on_request_keeps_buffered_records(aws) -> None:
    # GIVEN records buffered in open aggregates
    writer = writer_for(aws)
    ids = add_records(writer, range(1, 101))
    # WHEN the shard map is refreshed explicitly before flushing
    writer.refresh_shard_map()
    writer.flush()
    # THEN the buffered records were sent, not discarded
    assert Counter(read_stream(aws.stream_name).record_ids) == Counter(ids)


def test_an_error_retrying_cannot_fix_raises_at_once(aws, put_records_faults) -> None:
    # GIVEN Kinesis refusing one entry for a reason that will not go away
    faults = put_records_faults(lambda _call, position, _entry: "KMSAccessDeniedException" if position == 0 else None)
    writer = writer_for(aws, retry=FAST_RETRY)
    add_records(writer, range(1, 101))
    # WHEN flushed THEN it raises after one call, naming the error
    with pytest.raises(KinesisPutError, match="KMSAccessDeniedException x1") as raised:
        writer.flush()
    assert raised.value.failed_entries == 1
    assert len(faults.calls) == 1


def test_failures_that_outlast_the_retries_raise_and_nothing_is_counted_as_sent(aws, put_records_faults) -> None:
    # GIVEN Kinesis throttling every entry, and a writer allowed three attempts
    faults = put_records_faults(lambda *_: "ProvisionedThroughputExceededException")
    slept: list[float] = []
    writer = writer_for(aws, retry=FAST_RETRY, sleep=slept.append)
    add_records(writer, range(1, 101))
    # WHEN flushed THEN it raises after three calls with backoff between them
    with pytest.raises(KinesisPutError, match="still failing after 3 attempts"):
        writer.flush()
    assert len(faults.calls) == 3
    assert len(slept) == 2
    assert all(0 <= s <= FAST_RETRY.max_delay_seconds for s in slept)
    assert writer.stats.user_records == 0
    assert read_stream(aws.stream_name).records == []
