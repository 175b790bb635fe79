"""The Kinesis writer on the emulator: routing as Kinesis does it, per-shard aggregates, API limits,
resharding, and failures that are retried or raised but never dropped."""

from __future__ import annotations

import base64
from collections import Counter
from typing import Any

import pytest
from aws_kinesis_agg.deaggregator import iter_deaggregate_records

from churn_common.aws import client
from churn_common.wire import encode
from producer.kinesis_writer import MAX_BYTES_PER_PUT, MAX_RECORDS_PER_PUT, KinesisPutError, KinesisWriter, RetryPolicy
from producer.shard_map import HASH_KEY_SPACE, Shard, ShardMap, load_shard_map
from tests.factories import customer_record
from tests.integration.producer.conftest import read_stream

pytestmark = pytest.mark.integration

FAST_RETRY = RetryPolicy(max_attempts=3, base_delay_seconds=0.001, max_delay_seconds=0.01)


def writer_for(aws: Any, **options: Any) -> KinesisWriter:
    return KinesisWriter(stream_name=aws.stream_name, kinesis=client("kinesis"), **options)


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


def test_each_aggregate_holds_only_records_of_its_shard(aws) -> None:
    # GIVEN small aggregates, so that a few thousand records make many of them
    writer = writer_for(aws, max_aggregate_bytes=2048)
    ids = add_records(writer, range(1, 3001))
    # WHEN flushed
    stats = writer.flush()
    # THEN every record is on the stream once, on the shard its own key maps to
    stream = read_stream(aws.stream_name)
    assert Counter(stream.record_ids) == Counter(ids)
    assert all(writer.shard_map.shard_for(r.partition_key).shard_id == r.shard_id for r in stream.records)
    assert len({r.shard_id for r in stream.records}) == 2
    # AND the counts describe what was sent
    assert (stats.user_records, stats.kinesis_records, stats.bytes) == (
        3000,
        stream.kinesis_records,
        stream.kinesis_bytes,
    )
    assert stats.kinesis_records > 100


def test_put_records_calls_stay_within_500_entries_and_5_mib(aws, put_records_faults) -> None:
    # GIVEN a recorder of every PutRecords call, and two loads: many small aggregates, and a few huge ones
    recorder = put_records_faults()
    many = writer_for(aws, max_aggregate_bytes=512)
    add_records(many, range(1, 12_001))
    many.flush()
    huge = writer_for(aws, max_aggregate_bytes=1_000_000)
    blobs = [bytes([i]) * 100_000 for i in range(70)]
    for i, blob in enumerate(blobs):
        huge.add(f"blob-{i}", blob)
    huge.flush()
    # THEN no call broke a limit, both limits were reached, and everything arrived
    assert max(c["entries"] for c in recorder.calls) == MAX_RECORDS_PER_PUT
    assert all(c["bytes"] <= MAX_BYTES_PER_PUT for c in recorder.calls)
    assert huge.stats.put_calls >= 2
    stored = raw_user_records(aws.stream_name)
    assert len(stored) == 12_000 + 70
    assert sorted(data for _, key, data in stored if key.startswith("blob-")) == sorted(blobs)


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
