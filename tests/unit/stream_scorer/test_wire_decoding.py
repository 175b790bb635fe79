from __future__ import annotations

import pytest

from churn_common.wire import WIRE_V1_FIELDS, decode_batch, encode, peek_source_id, to_record
from tests.factories import customer_record


def test_round_trip_keeps_every_field() -> None:
    # GIVEN a record
    record = customer_record(row=17, label=1, customer_value=12.5)
    # WHEN it is encoded and decoded
    decoded = decode_batch([encode(record)])
    # THEN the logical record comes back unchanged (to the millisecond)
    assert decoded.rejections == []
    back = to_record(decoded.records[0])
    assert back.features == record.features
    assert (back.source_id, back.row, back.label) == (record.source_id, 17, 1)
    assert abs((back.event_time - record.event_time).total_seconds()) < 0.001


def test_encoding_is_compact() -> None:
    payload = encode(customer_record(row=123456))
    assert len(payload) < 100
    assert len(WIRE_V1_FIELDS) == 19
    assert payload.endswith(b",0]")  # without a customer id the record ends at its label, as before ids existed


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"not json", "undecodable payload"),
        (b'{"v": 1}', "unknown schema version: None"),
        (b"[2, 1, 2]", "unknown schema version: 2"),
        (
            b'[1,"a",1,5,-1,0,38,0,4370,71,5,17,3,1,1,30,197.64,0]',
            "call_failure: Input should be greater than or equal to 0",
        ),
        (b'[1,"a",1,5,1,0,38,0,4370,71,5,17,7,1,1,30,197.64,0]', "age_group: Input should be less than or equal to 5"),
        (b'[1,"a",1,5,1,0,38,0,4370,71,5,17,3,1,1,30,197.64]', "label: Field required"),
        (b'[1,"a",1,5,"8",0,38,0,4370,71,5,17,3,1,1,30,197.64,0]', "call_failure: Input should be a valid integer"),
    ],
)
def test_poison_record_is_rejected_with_reason_and_does_not_block_others(payload: bytes, reason: str) -> None:
    # GIVEN a poison record between two good ones
    good = [encode(customer_record(row=1)), encode(customer_record(row=2))]
    # WHEN the batch is decoded
    decoded = decode_batch([good[0], payload, good[1]])
    # THEN the poison one is rejected with its reason and both neighbours survive, in order
    assert decoded.indices == [0, 2]
    assert len(decoded.rejections) == 1
    assert decoded.rejections[0].index == 1
    assert reason in decoded.rejections[0].reason


def test_every_reason_of_a_record_is_reported() -> None:
    payload = b'[1,"a",1,5,-1,3,38,0,4370,71,5,17,3,1,1,30,197.64,0]'
    reason = decode_batch([payload]).rejections[0].reason
    assert "call_failure" in reason
    assert "complains" in reason


def test_peek_source_id_attributes_rejections_when_possible() -> None:
    assert peek_source_id(b'[1,"abc",1]') == "abc"
    assert peek_source_id(b"garbage") is None
    assert peek_source_id(b"[1]") is None
