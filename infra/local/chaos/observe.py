"""What the pipeline has done so far, read from the stack (queues, shards and checkpoints, the database)."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError
from sqlalchemy import Engine, func, select

from churn_common.aws import client
from churn_common.database import predictions, rejected_records
from churn_common.settings import get_settings
from infra.local.lambda_service import CheckpointStore, checkpoint_key
from infra.local.resources import FILE_DROPS_DLQ, StackResources
from infra.local.stack import checkpoints_path


def object_exists(s3: Any, *, bucket: str, key: str) -> bool:
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except ClientError:
        return False
    return True


def queue_depth(url: str) -> int:
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attributes = client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return sum(int(attributes[name]) for name in names)


def stream_drained(resources: StackResources) -> bool:
    """No shard holds a record after its checkpoint: everything put was delivered (or dead-lettered)."""
    kinesis = client("kinesis")
    stored = CheckpointStore(checkpoints_path(get_settings()))
    for shard in kinesis.list_shards(StreamName=resources.stream_name)["Shards"]:
        checkpoint = stored.get(checkpoint_key(resources.stream_arn, shard["ShardId"]))
        position: dict[str, Any] = (
            {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "StartingSequenceNumber": checkpoint}
            if checkpoint
            else {"ShardIteratorType": "TRIM_HORIZON"}
        )
        iterator = kinesis.get_shard_iterator(StreamName=resources.stream_name, ShardId=shard["ShardId"], **position)
        if kinesis.get_records(ShardIterator=iterator["ShardIterator"], Limit=1)["Records"]:
            return False
    return True


def settled_by_scorer(engine: Engine) -> int:
    with engine.connect() as connection:
        scored = connection.execute(select(func.count(func.distinct(predictions.c.record_id)))).scalar_one()
        rejected = connection.execute(select(func.count()).select_from(rejected_records)).scalar_one()
    return int(scored) + int(rejected)


def dead_lettered(resources: StackResources) -> dict[str, int]:
    drops_dlq = client("sqs").get_queue_url(QueueName=FILE_DROPS_DLQ)["QueueUrl"]
    return {"stream_scorer": queue_depth(resources.scorer_dlq_url), "producer": queue_depth(drops_dlq)}
