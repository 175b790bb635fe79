"""The scorer given events that are not Kinesis events (as AWS records them, ``tests/events/``), and
Kinesis records whose data is not base64."""

from __future__ import annotations

import json
from typing import Any

import pytest

from stream_scorer.handler import fault_kind, handle
from stream_scorer.kinesis_event import EXPECTED_EVENT, UNDECODABLE_DATA, UnexpectedEventError, user_records
from tests.events import load_event
from tests.factories import FIXED_INCARNATION, customer_record, encoded, fixed_incarnation, kinesis_event


@pytest.mark.parametrize(
    ("name", "arrived"),
    [
        pytest.param("sqs_event", "Records[].eventSource ['aws:sqs']", id="sqs"),
        pytest.param("s3_event", "Records[].eventSource ['aws:s3']", id="s3"),
        pytest.param("dynamodb_stream_event", "Records[].eventSource ['aws:dynamodb']", id="dynamodb"),
        pytest.param("eventbridge_ec2_event", "source 'aws.ec2'", id="eventbridge"),
        pytest.param("s3_eventbridge_event", "source 'aws.s3', detail-type 'Object Created'", id="s3-eventbridge"),
    ],
)
def test_an_event_that_is_not_a_kinesis_event_names_what_was_expected_and_what_arrived(name: str, arrived: str) -> None:
    with pytest.raises(UnexpectedEventError) as raised:
        user_records(load_event(name), incarnation_of=fixed_incarnation)
    assert raised.value.expected == EXPECTED_EVENT == "a Kinesis event: Records[].eventSource == aws:kinesis"
    assert arrived in raised.value.arrived
    assert EXPECTED_EVENT in str(raised.value)
    assert arrived in str(raised.value)


@pytest.mark.parametrize("event", [{}, [], "Records", None, {"Records": "x"}], ids=repr)
def test_anything_else_is_refused_the_same_way(event: Any) -> None:
    with pytest.raises(UnexpectedEventError, match="a Kinesis event"):
        user_records(event, incarnation_of=fixed_incarnation)


def test_the_recorded_kinesis_event_is_read_record_by_record() -> None:
    records = user_records(load_event("kinesis_stream_event"), incarnation_of=fixed_incarnation)
    assert records.payloads == [b"Hello, this is a test.", b"This is only a test."]
    assert records.event_ids == [
        f"{FIXED_INCARNATION}/shardId-000000000006:49590338271490256608559692538361571095921575989136588898:0",
        f"{FIXED_INCARNATION}/shardId-000000000006:49590338271490256608559692540925702759324208523137515618:0",
    ]
    assert records.rejections == []
    assert records.decodable_payloads is records.payloads


def test_the_handler_refuses_it_as_a_permanent_fault_in_one_line_without_a_traceback(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN an SQS event handed to the scorer (a mapping wired to the wrong source)
    event = load_event("sqs_event")
    # WHEN handled THEN it raises, so the caller sees the mistake and SQS keeps its messages
    with pytest.raises(UnexpectedEventError) as raised:
        handle(event, models=None, engine=None, incarnations=fixed_incarnation)  # type: ignore[arg-type]
    assert fault_kind(raised.value) == "event_shape"
    # AND it logs one line, naming what was expected and what arrived, and no traceback
    (line,) = [json.loads(text) for text in capsys.readouterr().out.splitlines()]
    assert (line["level"], line["fault"], line["retryable"]) == ("ERROR", "event_shape", False)
    assert "retrying cannot change that" in line["message"]
    assert EXPECTED_EVENT in line["error"]
    assert "Records[].eventSource ['aws:sqs']" in line["error"]
    assert "exception" not in line


@pytest.mark.parametrize(
    "data",
    [
        pytest.param("abc", id="incorrect-padding"),
        pytest.param('["v1", 1]', id="non-base64-characters"),
        pytest.param("YWJj\nZA==", id="newline-inside"),
        pytest.param("YWJjZA==YWJj", id="data-after-padding"),
        pytest.param("w6k=é", id="non-ascii"),
    ],
)
def test_data_that_is_not_strict_base64_is_rejected_alone_with_its_raw_text(data: str) -> None:
    # GIVEN three plain records, the middle one's data replaced
    payloads = encoded([customer_record(row=i) for i in (1, 2, 3)])
    event = kinesis_event(payloads, aggregate=False, first_sequence=10)
    event["Records"][1]["kinesis"]["data"] = data
    # WHEN read
    records = user_records(event, incarnation_of=fixed_incarnation)
    # THEN the other two are decodable, in order, and the middle one is rejected, last, with the text as sent
    assert list(records.decodable_payloads) == [payloads[0], payloads[2]]
    assert records.event_ids == [
        f"{FIXED_INCARNATION}/shardId-000000000000:10:0",
        f"{FIXED_INCARNATION}/shardId-000000000000:12:0",
        f"{FIXED_INCARNATION}/shardId-000000000000:11:0",
    ]
    assert [(r.index, r.reason) for r in records.rejections] == [(2, UNDECODABLE_DATA)]
    assert records.payloads[2] == data.encode()
    assert len(records) == 3
    assert len(records.arrival_times) == 3
