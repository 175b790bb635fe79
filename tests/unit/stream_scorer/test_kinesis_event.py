from __future__ import annotations

import base64
import hashlib

import pytest
from aws_kinesis_agg import MAGIC
from aws_kinesis_agg.deaggregator import messages_pb2

from churn_common.wire import decode_batch
from stream_scorer.kinesis_event import UnexpectedEventError, user_records
from tests.factories import FIXED_INCARNATION, customer_record, encoded, fixed_incarnation, kinesis_event


def test_aggregated_records_get_sub_sequence_event_ids_in_order() -> None:
    # GIVEN one aggregate of three user records
    payloads = encoded([customer_record(row=i) for i in (1, 2, 3)])
    event = kinesis_event(payloads, shard_id="shardId-000000000007", first_sequence=42)
    # WHEN deaggregated
    records = user_records(event, incarnation_of=fixed_incarnation)
    # THEN each keeps its payload and gets shard:sequence:sub as its idempotency key
    assert records.payloads == payloads
    assert records.event_ids == [f"{FIXED_INCARNATION}/shardId-000000000007:42:{i}" for i in range(3)]
    arrival = event["Records"][0]["kinesis"]["approximateArrivalTimestamp"]
    assert records.arrival_times == [arrival] * 3


def test_plain_records_pass_through_with_sub_sequence_zero() -> None:
    payloads = encoded([customer_record(row=1), customer_record(row=2)])
    records = user_records(kinesis_event(payloads, aggregate=False, first_sequence=5), incarnation_of=fixed_incarnation)
    assert records.payloads == payloads
    assert records.event_ids == [f"{FIXED_INCARNATION}/shardId-000000000000:{n}:0" for n in (5, 6)]


def test_corrupt_aggregate_is_handed_on_whole_and_rejected_not_dropped() -> None:
    # GIVEN an aggregate whose checksum no longer matches
    event = kinesis_event(encoded([customer_record(row=i) for i in (1, 2)]))
    data = bytearray(base64.b64decode(event["Records"][0]["kinesis"]["data"]))
    data[10] ^= 0xFF
    event["Records"][0]["kinesis"]["data"] = base64.b64encode(bytes(data)).decode()
    # WHEN deaggregated and decoded
    records = user_records(event, incarnation_of=fixed_incarnation)
    decoded = decode_batch(records.payloads)
    # THEN it is one record, rejected with a reason (visible, retriable by hand), nothing silently lost
    assert len(records) == 1
    assert decoded.records == []
    assert "undecodable payload" in decoded.rejections[0].reason


def test_an_aggregate_without_records_is_rejected_rather_than_silently_consumed() -> None:
    # GIVEN a well-formed aggregate (magic, protobuf, checksum) that holds no user record
    body = messages_pb2.AggregatedRecord().SerializeToString()
    data = MAGIC + body + hashlib.md5(body, usedforsecurity=False).digest()
    event = kinesis_event([data], aggregate=False)
    # WHEN deaggregated and decoded
    records = user_records(event, incarnation_of=fixed_incarnation)
    # THEN it still counts as one record, which the decoder rejects
    assert records.payloads == [data]
    assert decode_batch(records.payloads).rejections[0].index == 0


def test_an_event_that_is_not_a_kinesis_event_is_refused() -> None:
    # GIVEN an SQS-shaped event sent to the scorer by mistake
    event = {"Records": [{"messageId": "1", "body": "{}", "eventSource": "aws:sqs"}]}
    # WHEN deaggregated THEN it fails loudly, as a permanent error that names the event it expected
    with pytest.raises(UnexpectedEventError, match="a Kinesis event"):
        user_records(event, incarnation_of=fixed_incarnation)
