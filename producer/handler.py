"""Lambda entry point of the producer: ``producer.handler.lambda_handler``.

Each object an event names is processed by :class:`producer.file_processor.FileProcessor`. How a failure
is reported depends on how the event arrived, so the delivery is recognised first: in an SQS event each
message succeeds or fails on its own (a message that can never name an object is acknowledged after one
error line); a direct S3 or EventBridge event raises on failure, so Lambda's retries and on-failure
destination apply; anything else raises :class:`~producer.s3_events.NotificationError`, so a misconfigured
trigger or manual call sees its failure. A failed object is never acknowledged: whether retrying can help
(:func:`churn_common.errors.is_retryable`) changes what its error line says, not how it is reported.

Design notes: docs/producer.md#failure-reporting-per-delivery
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from churn_common.aws import client
from churn_common.errors import is_retryable
from churn_common.settings import get_settings
from producer.continuation import Deadline, continuation_in
from producer.file_processor import FileProcessor
from producer.logs import log
from producer.s3_events import (
    BODY_SHAPES,
    DIRECT_SHAPES,
    NotificationError,
    SqsEvent,
    describe,
    expected,
    is_sqs_event,
    parse_event,
    parse_notification,
    shown,
    validated,
)


@dataclass(frozen=True, slots=True)
class Delivery:
    """One way an event reaches the function, and how its outcome is reported."""

    name: str
    recognise: Callable[[Any], bool]
    handle: Callable[[Any, FileProcessor], dict[str, Any]]


def _error_fields(error: NotificationError, **more: Any) -> dict[str, Any]:
    return {**more, "problem": error.problem, "expected": error.expected, "arrived": error.arrived}


def _refused(error: NotificationError) -> NotificationError:
    """Logged once, here, without a traceback: the error line says all there is to know."""
    log.error("event refused: it names no object, and retrying cannot change that", extra=_error_fields(error))
    return error


# Every failed message is a batch item failure, whatever the error: SQS retries it and dead-letters it after the
# queue's maxReceiveCount, so it is never lost. The error's type only decides what the line says.
SQS_OUTCOMES: dict[bool, str] = {
    True: "will be retried",
    False: "retrying cannot help: dead-lettered after the queue's maxReceiveCount",
}
# A direct event raises on any failure: Lambda's retries and on-failure destination apply.
DIRECT_OUTCOMES: dict[bool, str] = {
    True: "Lambda retries it",
    False: "retrying cannot help: after Lambda's retries it goes to the on-failure destination or DLQ",
}


def _message_failed(what: str, error: Exception, message_id: str) -> dict[str, str]:
    """Logged with its traceback; the batch item failure that keeps the message on the queue."""
    retryable = is_retryable(error)
    log.exception(
        f"{what} failed, {SQS_OUTCOMES[retryable]}",
        extra={"message_id": message_id, "error": str(error), "retryable": retryable},
    )
    return {"itemIdentifier": message_id}


def _handle_sqs_event(event: Any, processor: FileProcessor) -> dict[str, Any]:
    try:
        messages = validated(SqsEvent, event, "SQS event").records
    except NotificationError as exc:
        raise _refused(exc) from None
    failures: list[dict[str, str]] = []
    for message in messages:
        message_id = message.message_id
        continuation = continuation_in(message.body)
        if continuation is not None:
            try:
                processor.resume(continuation)
            except Exception as exc:
                failures.append(_message_failed("continuation", exc, message_id))
            continue
        try:
            refs = parse_notification(message.body)
        except NotificationError as exc:
            line = "message acknowledged unprocessed: it names no object, and retrying cannot change that"
            log.error(line, extra=_error_fields(exc, message_id=message_id, body=shown(message.body)))
            continue
        try:
            for ref in refs:
                processor.process(ref)
        except Exception as exc:
            failures.append(_message_failed("message", exc, message_id))
    return {"batchItemFailures": failures}


def _handle_direct_event(event: Any, processor: FileProcessor) -> dict[str, Any]:
    try:
        refs = parse_event(event)
    except NotificationError as exc:
        raise _refused(exc) from None
    for ref in refs:
        try:
            processor.process(ref)
        except Exception as exc:
            retryable = is_retryable(exc)
            log.error(
                f"event failed, {DIRECT_OUTCOMES[retryable]}",
                extra={"source": ref.uri, "error": str(exc), "retryable": retryable},
            )
            raise
    return {"objects": [ref.uri for ref in refs]}


def _is_direct_event(event: Any) -> bool:
    return isinstance(event, dict) and any(shape.recognise(event) for shape in DIRECT_SHAPES)


DELIVERIES: tuple[Delivery, ...] = (
    Delivery(
        f"an SQS event (Records[].eventSource == aws:sqs) with message bodies {expected(BODY_SHAPES)}",
        is_sqs_event,
        _handle_sqs_event,
    ),
    Delivery(f"an event delivered directly, {expected(DIRECT_SHAPES)}", _is_direct_event, _handle_direct_event),
)
EXPECTED_EVENTS = ", or ".join(delivery.name for delivery in DELIVERIES)


def handle(event: Any, *, processor: FileProcessor) -> dict[str, Any]:
    delivery = next((delivery for delivery in DELIVERIES if delivery.recognise(event)), None)
    if delivery is None:
        error = NotificationError(expected=EXPECTED_EVENTS, arrived=describe(event), problem="unknown event shape")
        raise _refused(error)
    return delivery.handle(event, processor)


def lambda_handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    settings = get_settings()
    processor = FileProcessor(
        settings=settings,
        s3=client("s3"),
        kinesis=client("kinesis"),
        sqs=client("sqs"),
        deadline=Deadline.of_context(context, handoff_seconds=settings.producer_handoff_seconds),
    )
    return handle(event, processor=processor)
