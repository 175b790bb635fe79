"""The SQS event source mapping: receive, invoke, delete what succeeded, return what failed."""

from __future__ import annotations

import logging

from churn_common.aws import client
from infra.local.lambda_service.context import DEFAULT_TIMEOUT_SECONDS, Handler, LambdaContext
from infra.local.lambda_service.events import sqs_event
from infra.local.lambda_service.poller import MappingStats
from infra.local.principals import OPERATOR, acting_as

log = logging.getLogger(__name__)

SQS_WAIT_SECONDS = 1  # long polling: the receive itself is the wait between polls
SQS_RETRY_VISIBILITY_SECONDS = 2  # instead of the visibility timeout, so local retries come in seconds
SQS_MAX_BATCH_SIZE = 10  # ReceiveMessage's MaxNumberOfMessages limit


class SqsEventSource:
    """Polls a queue and invokes the handler with an ``aws:sqs`` event (ReportBatchItemFailures)."""

    partition = "queue"
    idle_seconds = 0.0

    def __init__(
        self,
        *,
        name: str,
        queue_url: str,
        queue_arn: str,
        handler: Handler,
        batch_size: int,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
    ) -> None:
        self.name, self.stats = name, MappingStats()
        self._queue_url, self._queue_arn, self._handler = queue_url, queue_arn, handler
        self._batch_size = min(batch_size, SQS_MAX_BATCH_SIZE)
        self._timeout_seconds = timeout_seconds
        self._sqs = client("sqs")
        self._region = self._sqs.meta.region_name

    def reset(self) -> None:
        """Nothing to reset: every poll is a fresh ReceiveMessage."""

    def close(self) -> None:
        """Nothing to interrupt: a poll waits at most ``SQS_WAIT_SECONDS``."""

    def poll_once(self) -> int:
        messages = self._sqs.receive_message(
            QueueUrl=self._queue_url,
            MaxNumberOfMessages=self._batch_size,
            WaitTimeSeconds=SQS_WAIT_SECONDS,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            return 0
        self.stats.invocations += 1
        self.stats.records += len(messages)
        context = LambdaContext(self.name, timeout_seconds=self._timeout_seconds)
        try:
            response = self._handler(sqs_event(messages, queue_arn=self._queue_arn, region=self._region), context) or {}
            failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
        except Exception:
            log.exception("%s: handler failed; the batch will be retried", self.name)
            self.stats.errors += 1
            failed = {m["MessageId"] for m in messages}
        if context.get_remaining_time_in_millis() < 0:
            # Lambda would have ended the invocation at its timeout: nothing it returned counts.
            log.error(
                "%s: invocation ran past its %.0f s timeout; the batch will be retried",
                self.name,
                self._timeout_seconds,
            )
            self.stats.errors += 1
            self.stats.timeouts += 1
            failed = {m["MessageId"] for m in messages}
        for message in messages:
            if message["MessageId"] in failed:
                # Not a call Lambda makes (a failed message waits out its visibility timeout there): the
                # stand-in's shortcut to a prompt retry, made as the service, not as the function.
                with acting_as(OPERATOR):
                    self._sqs.change_message_visibility(
                        QueueUrl=self._queue_url,
                        ReceiptHandle=message["ReceiptHandle"],
                        VisibilityTimeout=SQS_RETRY_VISIBILITY_SECONDS,
                    )
            else:
                self._sqs.delete_message(QueueUrl=self._queue_url, ReceiptHandle=message["ReceiptHandle"])
        return len(messages)
