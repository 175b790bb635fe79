"""Lambda entry point of the producer: ``producer.handler.lambda_handler``.

Each object an event names is processed by :class:`producer.file_processor.FileProcessor`. How a failure
is reported depends on how the event arrived, so the delivery is recognised first: in an SQS event each
message succeeds or fails on its own (a message that can never name an object is acknowledged after one
error line); a direct S3 or EventBridge event raises on failure, so Lambda's retries and on-failure
destination apply; anything else raises :class:`~producer.s3_events.NotificationError`, so a misconfigured
trigger or manual call sees its failure.

Design notes: docs/producer.md#failure-reporting-per-delivery
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from churn_common.aws import client
from churn_common.redaction import RedactingFilter
from churn_common.settings import get_settings
from producer.continuation import Deadline, continuation_in
from producer.file_processor import FileProcessor
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

log = logging.getLogger("producer")
# Every line of the producer (also file_processor's, same logger) may quote an error text naming a URL; the
# Lambda runtime's handler formats them, so the filter on the logger is where they can all be redacted.
if not any(isinstance(f, RedactingFilter) for f in log.filters):
    log.addFilter(RedactingFilter())


@dataclass(frozen=True, slots=True)
class Delivery:
    """One way an event reaches the function, and how its outcome is reported."""

    name: str
    recognise: Callable[[Any], bool]
    handle: Callable[[Any, FileProcessor], dict[str, Any]]


def _error_line(message: str, error: NotificationError, **more: Any) -> str:
    return json.dumps(
        {"message": message, **more, "problem": error.problem, "expected": error.expected, "arrived": error.arrived}
    )


def _refused(error: NotificationError) -> NotificationError:
    """Logged once, here, without a traceback: the error line says all there is to know."""
    log.error(_error_line("event refused: it names no object, and retrying cannot change that", error))
    return error


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
                failure = {
                    "message": "continuation failed, will be retried",
                    "message_id": message_id,
                    "error": str(exc),
                }
                log.exception(json.dumps(failure))
                failures.append({"itemIdentifier": message_id})
            continue
        try:
            refs = parse_notification(message.body)
        except NotificationError as exc:
            line = "message acknowledged unprocessed: it names no object, and retrying cannot change that"
            log.error(_error_line(line, exc, message_id=message_id, body=shown(message.body)))
            continue
        try:
            for ref in refs:
                processor.process(ref)
        except Exception as exc:
            # Retried by SQS, and dead-lettered after the queue's maxReceiveCount: never dropped.
            failure = {"message": "message failed, will be retried", "message_id": message_id, "error": str(exc)}
            log.exception(json.dumps(failure))
            failures.append({"itemIdentifier": message_id})
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
            log.error(json.dumps({"message": "event failed, Lambda retries it", "source": ref.uri, "error": str(exc)}))
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
