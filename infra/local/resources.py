"""Creates the pipeline's AWS resources (same names and settings as the Terraform) on an endpoint.

Idempotent: running it against a stack that already has the resources changes nothing.
"""

from __future__ import annotations

import json
import time
from contextlib import suppress
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from churn_common.aws import client
from churn_common.settings import Settings, get_settings

MAPPINGS_FILE = Path(__file__).resolve().parent.parent / "event_source_mappings.json"
STREAM_SHARDS = 2
FILE_DROPS_DLQ = "file-drops-dlq"
SCORER_DLQ = "stream-scorer-dlq"
ALERTS_OUTBOX_QUEUE = "churn-model-alerts-outbox"


@lru_cache(maxsize=1)
def event_source_mappings() -> dict[str, Any]:
    return json.loads(MAPPINGS_FILE.read_text())


@dataclass(frozen=True)
class StackResources:
    bucket: str
    stream_name: str
    stream_arn: str
    file_drops_queue_url: str
    file_drops_queue_arn: str
    scorer_dlq_url: str
    scorer_dlq_arn: str
    alert_topic_arn: str
    alerts_outbox_url: str


def _queue(name: str, **attributes: str) -> tuple[str, str]:
    sqs = client("sqs")
    url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def _stream(name: str, shards: int) -> str:
    kinesis = client("kinesis")
    with suppress(kinesis.exceptions.ResourceInUseException):
        kinesis.create_stream(StreamName=name, ShardCount=shards)
    for _ in range(100):
        description = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
        if description["StreamStatus"] == "ACTIVE":
            return description["StreamARN"]
        time.sleep(0.1)
    raise TimeoutError(f"stream {name} did not become ACTIVE")


def provision(settings: Settings | None = None, *, shards: int = STREAM_SHARDS) -> StackResources:
    settings = settings or get_settings()
    mappings = event_source_mappings()
    s3, sns = client("s3"), client("sns")

    s3.create_bucket(Bucket=settings.bucket)
    # As in the Terraform: each uploaded version is processed once, and a newer upload under a key survives.
    s3.put_bucket_versioning(Bucket=settings.bucket, VersioningConfiguration={"Status": "Enabled"})
    _, drops_dlq_arn = _queue(FILE_DROPS_DLQ)
    redrive = {"deadLetterTargetArn": drops_dlq_arn, "maxReceiveCount": str(mappings["producer"]["max_receive_count"])}
    drops_url, drops_arn = _queue(
        settings.file_drops_queue,
        VisibilityTimeout=str(mappings["producer"]["visibility_timeout_seconds"]),
        RedrivePolicy=json.dumps(redrive),
    )
    scorer_dlq_url, scorer_dlq_arn = _queue(SCORER_DLQ)
    s3.put_bucket_notification_configuration(
        Bucket=settings.bucket,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "QueueArn": drops_arn,
                    "Events": ["s3:ObjectCreated:*"],
                    # Every object under the prefix, whatever its name: the producer processes or errors each.
                    "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": settings.input_prefix}]}},
                }
            ]
        },
    )
    stream_arn = _stream(settings.stream_name, shards)
    topic_arn = sns.create_topic(Name=settings.alert_topic)["TopicArn"]
    outbox_url, outbox_arn = _queue(ALERTS_OUTBOX_QUEUE)
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=outbox_arn, Attributes={"RawMessageDelivery": "false"})
    return StackResources(
        bucket=settings.bucket,
        stream_name=settings.stream_name,
        stream_arn=stream_arn,
        file_drops_queue_url=drops_url,
        file_drops_queue_arn=drops_arn,
        scorer_dlq_url=scorer_dlq_url,
        scorer_dlq_arn=scorer_dlq_arn,
        alert_topic_arn=topic_arn,
        alerts_outbox_url=outbox_url,
    )
