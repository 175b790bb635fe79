"""Structured logs and per-batch metrics: one JSON document per line on stdout.

The batch line is also a CloudWatch Embedded Metric Format document: in AWS its counts become metrics
(namespace ``ChurnPipeline``, dimension ``service``) without an API call; locally it is a JSON log line.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel

from churn_common.redaction import redact

SERVICE = "stream_scorer"
METRICS_NAMESPACE = "ChurnPipeline"
FIELDS_ATTRIBUTE = "fields"


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


METRIC_UNITS: dict[str, str] = {
    "records_in": "Count",
    "scored": "Count",
    "duplicates": "Count",
    "rejected": "Count",
    "batch_latency_ms": "Milliseconds",
    "oldest_record_age_s": "Seconds",
}


def emf_document(metrics: BatchMetrics, *, at: datetime) -> dict[str, Any]:
    values = metrics.model_dump()
    present = [name for name in METRIC_UNITS if values[name] is not None]
    return {
        "_aws": {
            "Timestamp": int(at.timestamp() * 1000),
            "CloudWatchMetrics": [
                {
                    "Namespace": METRICS_NAMESPACE,
                    "Dimensions": [["service"]],
                    "Metrics": [{"Name": name, "Unit": METRIC_UNITS[name]} for name in present],
                }
            ],
        },
        "service": SERVICE,
        **values,
    }


class JsonLinesHandler(logging.Handler):
    """Writes each record as one JSON object to the current ``sys.stdout`` (what Lambda ships to CloudWatch).

    The whole line is redacted (:func:`churn_common.redaction.redact`): message, fields and traceback may
    quote a URL with credentials (an unreachable registry's ``MLFLOW_TRACKING_URI``), and every line of the
    scorer passes here."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            document: dict[str, Any] = {
                "timestamp": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
                "level": record.levelname,
                "service": SERVICE,
                "logger": record.name,
                "message": record.getMessage(),
                **getattr(record, FIELDS_ATTRIBUTE, {}),
            }
            if record.exc_info:
                document["exception"] = logging.Formatter().formatException(record.exc_info)
            sys.stdout.write(redact(json.dumps(document, default=str)) + "\n")
            sys.stdout.flush()
        except Exception:
            self.handleError(record)


def service_logger() -> logging.Logger:
    """The ``stream_scorer`` logger (and its children) writing JSON lines; idempotent."""
    logger = logging.getLogger(SERVICE)
    if not any(isinstance(h, JsonLinesHandler) for h in logger.handlers):
        logger.addHandler(JsonLinesHandler())
        logger.propagate = False
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.INFO)
    return logger


def fields(**values: Any) -> dict[str, dict[str, Any]]:
    """``log.info(message, extra=fields(...))``: extra keys of the JSON line."""
    return {FIELDS_ATTRIBUTE: values}
