"""A local stand-in for the Lambda service: event source mappings that poll SQS and Kinesis and
invoke the very same handler functions with AWS-shaped events.

Kinesis semantics follow AWS for the settings in ``infra/event_source_mappings.json``: batch size, batching
window and the 6 MB invocation payload limit; starting position (TRIM_HORIZON, LATEST); per-shard ordering
(one poller per shard, one batch in flight); ReportBatchItemFailures (retry from the lowest reported
sequence number, a malformed report fails the whole batch, the report is ignored when the mapping does not
enable it); bisect on function error (splitting uses no retry); maximum retry attempts and maximum record
age (-1 = unbounded); the on-failure destination (an SQS message describing the discarded records' shard
and sequence range, as AWS sends); checkpoints persisted so that a restart resumes where it stopped.
Not modelled: AT_TIMESTAMP starting positions, resharding (parents before children), parallelization
factors above 1, tumbling windows and filter criteria.

One difference, on purpose: a failed SQS message is made visible again after a short back-off instead
of the queue's full visibility timeout, so local runs retry in seconds rather than minutes.
"""

from infra.local.lambda_service.checkpoints import CheckpointStore, checkpoint_key
from infra.local.lambda_service.context import Handler, LambdaContext
from infra.local.lambda_service.events import failure_record, kinesis_event_record, sqs_event
from infra.local.lambda_service.kinesis_poller import KinesisMappingConfig, KinesisShardPoller, shard_pollers
from infra.local.lambda_service.poller import MappingStats, Poller
from infra.local.lambda_service.service import LambdaService
from infra.local.lambda_service.sqs_source import SqsEventSource

__all__ = [
    "CheckpointStore",
    "Handler",
    "KinesisMappingConfig",
    "KinesisShardPoller",
    "LambdaContext",
    "LambdaService",
    "MappingStats",
    "Poller",
    "SqsEventSource",
    "checkpoint_key",
    "failure_record",
    "kinesis_event_record",
    "shard_pollers",
    "sqs_event",
]
