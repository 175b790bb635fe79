from __future__ import annotations

import base64

from churn_common.wire import decode_batch
from stream_scorer.kinesis_event import user_records
from tests.factories import customer_record, encoded, kinesis_event


def test_aggregated_records_get_sub_sequence_event_ids_in_order() -> None:
    # GIVEN one aggregate of three user records
    payloads = encoded([customer_record(row=i) for i in (1, 2, 3)])
    event = kinesis_event(payloads, shard_id="shardId-000000000007", first_sequence=42)
    # WHEN deaggregated
    records = user_records(event)
    # THEN each keeps its payload and gets shard:sequence:sub as its idempotency key
    assert [r.payload for r in records] == payloads
    assert [r.event_id for r in records] == [f"shardId-000000000007:42:{i}" for i in range(3)]


def test_plain_records_pass_through_with_sub_sequence_zero() -> None:
    payloads = encoded([customer_record(row=1), customer_record(row=2)])
    records = user_records(kinesis_event(payloads, aggregate=False, first_sequence=5))
    assert [r.payload for r in records] == payloads
    assert [r.event_id for r in records] == ["shardId-000000000000:5:0", "shardId-000000000000:6:0"]


def test_corrupt_aggregate_is_handed_on_whole_and_rejected_not_dropped() -> None:
    # GIVEN an aggregate whose checksum no longer matches
    event = kinesis_event(encoded([customer_record(row=i) for i in (1, 2)]))
    data = bytearray(base64.b64decode(event["Records"][0]["kinesis"]["data"]))
    data[10] ^= 0xFF
    event["Records"][0]["kinesis"]["data"] = base64.b64encode(bytes(data)).decode()
    # WHEN deaggregated and decoded
    records = user_records(event)
    decoded = decode_batch([r.payload for r in records])
    # THEN it is one record, rejected with a reason (visible, retriable by hand), nothing silently lost
    assert len(records) == 1
    assert decoded.records == []
    assert "undecodable payload" in decoded.rejections[0].reason
