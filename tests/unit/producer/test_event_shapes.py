"""The producer handler given each event shape AWS can deliver, as AWS records them (``tests/events/``):
which objects reach the processor, what is acknowledged, retried or refused, and what the log says."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import pytest

from producer.file_processor import AccountingError
from producer.handler import handle
from producer.logs import log
from producer.s3_events import NotificationError, ObjectRef
from producer.splitter import FileFormatError
from tests.events import load_event


class Processor:
    """Stands in for FileProcessor: records every object it is handed, fails for the keys it is told to."""

    def __init__(
        self, *, failing_keys: frozenset[str] = frozenset(), failure: Callable[[str], Exception] = ConnectionError
    ) -> None:
        self.refs: list[ObjectRef] = []
        self.failing_keys = failing_keys
        self.failure = failure

    def process(self, ref: ObjectRef) -> None:
        self.refs.append(ref)
        if ref.key in self.failing_keys:
            raise self.failure(f"S3 unreachable while reading {ref.uri}")


def run(event: Any, processor: Processor | None = None) -> tuple[dict[str, Any], Processor]:
    processor = processor or Processor()
    return handle(event, processor=processor), processor  # type: ignore[arg-type]


def error_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "producer" and r.levelno >= logging.ERROR]


def logged(record: logging.LogRecord) -> dict[str, Any]:
    """The JSON line the producer writes for ``record``."""
    line = log.registered_formatter.format(record)
    assert "\n" not in line
    return dict(json.loads(line))


def with_body(event: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    event["Records"][0]["body"] = json.dumps(body)
    return event


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        pytest.param(
            "s3_sqs_event",
            ObjectRef(
                bucket="xxx",
                key="test.pdf",
                event_name="ObjectCreated:Put",
                etag="2e3ad1e983318bbd8e73b080e2997980",
                size=104681,
                version_id="yd3d4HaWOT2zguDLvIQLU6ptDTwKBnQV",
                sequencer="00643717F9F8B85354",
            ),
            id="s3-sqs",
        ),
        pytest.param(
            "s3_sns_sqs_event",
            ObjectRef(
                bucket="unwraptestevents-bucket-683517028648",
                key="firehose-s3-template.json",
                event_name="ObjectCreated:Put",
                etag="e77dffcd1756d6e8e5123ef1e0ce7c54",
                size=4314,
                sequencer="0065FA0B4B104A6DAB",
            ),
            id="s3-sns-sqs",
        ),
        pytest.param(
            "s3_eventbridge_sqs_event",
            ObjectRef(
                bucket="s3-eb-unwrap-sourcebucket-7mop1gqlyrzu",
                key="__init__.py",
                event_name="Object Created:PutObject",
                etag="d41d8cd98f00b204e9800998ecf8427e",
                size=0,
                sequencer="0066030E82E2A48DFE",
            ),
            id="s3-eventbridge-sqs",
        ),
    ],
)
def test_each_sqs_delivered_shape_hands_its_object_to_the_processor(name: str, expected: ObjectRef) -> None:
    # GIVEN an SQS event as AWS recorded it for that route
    # WHEN handled
    response, processor = run(load_event(name))
    # THEN the object it names is processed, with its version and ordering fields, and the message acknowledged
    assert processor.refs == [expected]
    assert response == {"batchItemFailures": []}


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        pytest.param(
            "s3_event",
            ObjectRef(
                bucket="lambda-artifacts-deafc19498e3f2df",
                key="b21b84d653bb07b05b1e6b33684dc11b",
                event_name="ObjectCreated:Put",
                etag="b21b84d653bb07b05b1e6b33684dc11b",
                size=1305107,
                sequencer="0C0F6F405D6ED209E1",
            ),
            id="s3-direct",
        ),
        pytest.param(
            "s3_eventbridge_event",
            ObjectRef(
                bucket="example-bucket",
                key="IMG_m7fzo3.jpg",
                event_name="Object Created:PutObject",
                etag="4e68adba0abe2dc8653dc3354e14c01d",
                size=184662,
                sequencer="006408CAD69598B05E",
            ),
            id="eventbridge-direct",
        ),
        pytest.param(
            "s3_eventbridge_versioned_event",
            ObjectRef(
                bucket="amzn-s3-demo-bucket1",
                key="example-key",
                event_name="Object Created:PutObject",
                etag="b1946ac92492d2347c6235b4d2611184",
                size=5,
                version_id="IYV3p45BT0ac8hjHg1houSdS1a.Mro8e",
                sequencer="617f08299329d189",
            ),
            id="eventbridge-direct-versioned",
        ),
    ],
)
def test_each_directly_delivered_shape_hands_its_object_to_the_processor(name: str, expected: ObjectRef) -> None:
    response, processor = run(load_event(name))
    assert processor.refs == [expected]
    assert response == {"objects": [expected.uri]}


def test_the_s3_test_event_is_acknowledged_and_processes_nothing(caplog: pytest.LogCaptureFixture) -> None:
    response, processor = run(load_event("s3_test_event_sqs"))
    assert (response, processor.refs) == ({"batchItemFailures": []}, [])
    assert not error_lines(caplog)


def test_the_s3_test_event_inside_an_sns_envelope_is_acknowledged_too() -> None:
    # GIVEN S3 publishing to SNS: the test event S3 sends at set-up arrives as the envelope's Message
    event = load_event("s3_sns_sqs_event")
    envelope = json.loads(event["Records"][0]["body"])
    envelope["Message"] = load_event("s3_test_event_sqs")["Records"][0]["body"]
    # WHEN handled THEN nothing is processed and nothing retried
    response, processor = run(with_body(event, envelope))
    assert (response, processor.refs) == ({"batchItemFailures": []}, [])


def test_eventbridge_keys_are_taken_verbatim_and_notification_keys_url_decoded() -> None:
    # GIVEN the same key, holding a space, a plus sign and a percent sign, in both shapes
    key = "data/input/2026 11/a+b%2B.csv"
    bridged = load_event("s3_eventbridge_event")
    bridged["detail"]["object"]["key"] = key
    wrapped = load_event("s3_sns_sqs_event")
    envelope = json.loads(wrapped["Records"][0]["body"])
    notification = json.loads(envelope["Message"])
    notification["Records"][0]["s3"]["object"]["key"] = "data%2Finput%2F2026+11%2Fa%2Bb%252B.csv"
    envelope["Message"] = json.dumps(notification)
    # WHEN each is handled THEN both name the same real object key
    assert [r.key for r in run(bridged)[1].refs] == [key]
    assert [r.key for r in run(with_body(wrapped, envelope))[1].refs] == [key]


def test_eventbridge_events_other_than_object_created_process_nothing() -> None:
    event = load_event("s3_eventbridge_sqs_event")
    bridged = json.loads(event["Records"][0]["body"])
    bridged["detail-type"] = "Object Deleted"
    response, processor = run(with_body(event, bridged))
    assert (response, processor.refs) == ({"batchItemFailures": []}, [])


@pytest.mark.parametrize(
    ("name", "arrived"),
    [
        pytest.param("sqs_event", ["arrived text 'Test message.'", "arrived keys ['message']"], id="plain-sqs"),
        pytest.param(
            "sns_sqs_event",
            ["arrived an SNS notification from arn:aws:sns:eu-west-1:231436140809:powertools265 whose Message is keys"],
            id="sns-of-something-else",
        ),
    ],
)
def test_bodies_that_name_no_object_are_acknowledged_after_one_clear_line_each(
    name: str, arrived: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN messages whose bodies can never name an object
    event = load_event(name)
    # WHEN handled
    response, processor = run(event)
    # THEN they are acknowledged (a retry could only fail the same way), and nothing is processed
    assert (response, processor.refs) == ({"batchItemFailures": []}, [])
    # AND each gets one error line, without a traceback, naming the message, what was expected and what came
    lines = error_lines(caplog)
    assert len(lines) == len(event["Records"])
    for line, record, what in zip(lines, event["Records"], arrived, strict=True):
        assert line.exc_info is None
        assert "\n" not in line.getMessage()
        fields = logged(line)
        assert fields["message_id"] == record["messageId"]
        assert "S3 event notification (Records[].eventSource == aws:s3)" in fields["expected"]
        assert "EventBridge S3 event (source == aws.s3" in fields["expected"]
        assert what in f"arrived {fields['arrived']}"
        assert fields["body"] == repr(record["body"][:200] + ("..." if len(record["body"]) > 200 else ""))


def test_an_invalid_body_of_a_known_shape_is_acknowledged_with_its_fault_named(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # GIVEN an S3 notification whose record has lost its bucket
    event = load_event("s3_sqs_event")
    notification = json.loads(event["Records"][0]["body"])
    del notification["Records"][0]["s3"]["bucket"]
    # WHEN handled THEN it is acknowledged, and the line names the missing field
    response, processor = run(with_body(event, notification))
    assert (response, processor.refs) == ({"batchItemFailures": []}, [])
    (line,) = error_lines(caplog)
    assert "Records.0.s3.bucket: Field required" in logged(line)["problem"]


def test_in_a_mixed_batch_only_the_message_whose_processing_failed_is_retried(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # GIVEN one batch: an S3 notification, two bodies of no known shape, and an EventBridge event whose
    # object cannot be read right now
    records = [
        *load_event("s3_sqs_event")["Records"],
        *load_event("sqs_event")["Records"],
        *load_event("s3_eventbridge_sqs_event")["Records"],
    ]
    processor = Processor(failing_keys=frozenset({"__init__.py"}))
    # WHEN handled
    response, _ = run({"Records": records}, processor)
    # THEN only the failed one is a batch item failure: SQS retries it, then dead-letters it
    assert response == {"batchItemFailures": [{"itemIdentifier": "ee95829a-ba32-471d-9684-34368ab9995e"}]}
    assert [r.key for r in processor.refs] == ["test.pdf", "__init__.py"]
    # AND the transient failure is logged with its traceback, the two impossible bodies without
    lines = error_lines(caplog)
    assert [line.exc_info is not None for line in lines] == [False, False, True]
    failed = logged(lines[-1])
    assert (failed["message"], failed["retryable"]) == ("message failed, will be retried", True)


@pytest.mark.parametrize(
    "failure",
    [
        pytest.param(AccountingError, id="accounting"),
        pytest.param(FileFormatError, id="file-format"),
    ],
)
def test_a_failure_retrying_cannot_help_is_still_reported_so_sqs_dead_letters_it(
    failure: Callable[[str], Exception], caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN a message whose object fails the same way on every attempt
    event = load_event("s3_sqs_event")
    processor = Processor(failing_keys=frozenset({"test.pdf"}), failure=failure)
    # WHEN handled THEN it is still a batch item failure: never acknowledged, dead-lettered after maxReceiveCount
    response, _ = run(event, processor)
    assert response == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}
    # AND its line says that retrying cannot help
    (line,) = error_lines(caplog)
    fields = logged(line)
    assert fields["retryable"] is False
    assert fields["message"] == "message failed, retrying cannot help: dead-lettered after the queue's maxReceiveCount"


def test_a_direct_event_whose_processing_fails_raises_for_lambda_to_retry(caplog: pytest.LogCaptureFixture) -> None:
    processor = Processor(failing_keys=frozenset({"IMG_m7fzo3.jpg"}))
    with pytest.raises(ConnectionError):
        run(load_event("s3_eventbridge_event"), processor)
    (line,) = error_lines(caplog)
    assert (logged(line)["message"], logged(line)["retryable"]) == ("event failed, Lambda retries it", True)


def test_a_direct_event_failing_the_same_way_every_time_still_raises(caplog: pytest.LogCaptureFixture) -> None:
    processor = Processor(failing_keys=frozenset({"IMG_m7fzo3.jpg"}), failure=AccountingError)
    with pytest.raises(AccountingError):
        run(load_event("s3_eventbridge_event"), processor)
    (line,) = error_lines(caplog)
    assert logged(line)["retryable"] is False
    assert "retrying cannot help" in logged(line)["message"]


@pytest.mark.parametrize(
    ("event", "arrived"),
    [
        pytest.param(load_event("kinesis_stream_event"), "Records[].eventSource ['aws:kinesis']", id="kinesis"),
        pytest.param(load_event("dynamodb_stream_event"), "Records[].eventSource ['aws:dynamodb']", id="dynamodb"),
        pytest.param(load_event("eventbridge_ec2_event"), "source 'aws.ec2'", id="eventbridge-ec2"),
        pytest.param({}, "keys []", id="empty"),
        pytest.param(["not", "an", "event"], "JSON list", id="list"),
        pytest.param({"Records": []}, "keys ['Records']", id="no-records"),
    ],
)
def test_an_event_of_no_known_shape_is_refused_with_one_clear_line(
    event: Any, arrived: str, caplog: pytest.LogCaptureFixture
) -> None:
    # WHEN an event of no known shape invokes the function THEN it raises: its caller must see the mistake
    with pytest.raises(NotificationError, match="unknown event shape") as raised:
        run(event)
    assert arrived in raised.value.arrived
    assert "an SQS event (Records[].eventSource == aws:sqs)" in raised.value.expected
    assert "an event delivered directly, one of [" in raised.value.expected
    # AND it says so in one line, without a traceback
    (line,) = error_lines(caplog)
    assert line.exc_info is None
    assert logged(line)["arrived"] == raised.value.arrived


def test_an_invalid_sqs_event_is_refused_with_its_fault_named(caplog: pytest.LogCaptureFixture) -> None:
    event = load_event("s3_sqs_event")
    del event["Records"][0]["messageId"]
    with pytest.raises(NotificationError, match=r"invalid SQS event \(Records\.0\.messageId: Field required\)"):
        run(event)
    assert len(error_lines(caplog)) == 1
