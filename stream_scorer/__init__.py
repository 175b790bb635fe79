"""Kinesis consumer: deaggregate, validate and score a batch of customer records in one pass."""

from churn_common.public_api import lazy_exports

_EXPORTS = {
    "BatchMetrics": "stream_scorer.telemetry",
    "ModelCache": "stream_scorer.model",
    "handle": "stream_scorer.handler",
    "lambda_handler": "stream_scorer.handler",
    "write_batch": "stream_scorer.sink",
}
__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
