"""Structured logs and per-batch metrics of the scorer, with Powertools for AWS Lambda: one JSON document per
line on stdout.

Log lines come from a Powertools :class:`~aws_lambda_powertools.Logger` (service ``stream_scorer``); each
batch's counts go out as one CloudWatch Embedded Metric Format line from Powertools
:class:`~aws_lambda_powertools.Metrics` (namespace ``ChurnPipeline``, dimension ``service``): in AWS they
become metrics without an API call, locally they are JSON lines next to the log.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from pydantic import BaseModel

from churn_common.lambda_logging import service_logger

SERVICE = "stream_scorer"
METRICS_NAMESPACE = "ChurnPipeline"


class BatchMetrics(BaseModel):
    """What one invocation did; ``scored`` counts new prediction rows, ``duplicates`` redelivered ones."""

    records_in: int
    scored: int
    duplicates: int
    rejected: int
    batch_latency_ms: float
    oldest_record_age_s: float | None
    model_name: str | None
    model_version: str | None
    challenger_version: str | None = None


METRIC_UNITS: dict[str, str] = {
    "records_in": "Count",
    "scored": "Count",
    "duplicates": "Count",
    "rejected": "Count",
    "batch_latency_ms": "Milliseconds",
    "oldest_record_age_s": "Seconds",
}
METRIC_PROPERTIES = ("model_name", "model_version", "challenger_version")


def scorer_logger() -> Logger:
    """The ``stream_scorer`` logger. It does not propagate: its lines are complete, and a root handler would
    print them a second time."""
    return service_logger(SERVICE, propagate=False)


def service_metrics() -> Metrics:
    """The scorer's metrics; Powertools keeps one metric set per process, shared by every instance."""
    return Metrics(namespace=METRICS_NAMESPACE, service=SERVICE)


def publish(metrics: BatchMetrics, *, at: datetime, sink: Metrics | None = None) -> None:
    """Writes ``metrics`` as one EMF line (timestamped ``at``) and empties the set, so nothing of this
    invocation is left for the next one (the local Lambda stand-in runs many in one process)."""
    sink = sink or service_metrics()
    values = metrics.model_dump()
    try:
        for name, unit in METRIC_UNITS.items():
            if values[name] is not None:
                sink.add_metric(name=name, unit=unit, value=values[name])
        for name in METRIC_PROPERTIES:
            if values[name] is not None:
                sink.add_metadata(key=name, value=values[name])
        sink.set_timestamp(at)
        sink.flush_metrics(raise_on_empty_metrics=True)
    finally:
        sink.clear_metrics()


def fields(**values: Any) -> dict[str, Any]:
    """``log.info(message, extra=fields(...))``: extra keys of the JSON line (Powertools drops ``None`` ones)."""
    return values
