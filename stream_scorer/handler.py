"""Lambda entry point of the stream scorer: ``stream_scorer.handler.lambda_handler``.

A batch is scored with one predict call and written with one idempotent statement (once per record id).
Poison records go to ``rejected_records`` in the same transaction and never block the shard. Transient
faults raise, so Lambda retries the batch: nothing unwritten is acknowledged, and the retry cannot
double-count. Every failure raises; whether the log line calls it retryable is decided by the error's type
(:func:`churn_common.errors.is_retryable`). An event that is not a Kinesis event raises
:class:`~stream_scorer.kinesis_event.UnexpectedEventError` after one error line, because returning would
pass for success to a caller that wired the function wrongly.

Design notes: docs/stream_scorer.md#failure-handling
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from churn_common.database import get_engine
from churn_common.errors import is_retryable
from churn_common.settings import get_settings
from stream_scorer.kinesis_event import UnexpectedEventError, UserRecords, user_records
from stream_scorer.model import ModelCache
from stream_scorer.model_registry import ModelNotFoundError, RegistryUnavailableError
from stream_scorer.rejects import rejected_rows
from stream_scorer.scoring import score
from stream_scorer.sink import StaleDeliveryIdsError, write_batch
from stream_scorer.stream_incarnation import IncarnationOf, StreamIncarnations
from stream_scorer.telemetry import BatchMetrics, fields, publish, scorer_logger, service_metrics
from stream_scorer.validation import decode_columns

log = scorer_logger()
metrics_sink = service_metrics()

FAULT_KINDS: dict[type[Exception], str] = {
    DBAPIError: "database",
    RegistryUnavailableError: "registry",
    ModelNotFoundError: "model",
    UnexpectedEventError: "event_shape",
    StaleDeliveryIdsError: "stream_recreated",
}
# Whatever the fault, the batch raises and nothing is acknowledged; what the line says about a retry is
# decided by the error's type (churn_common.errors), the fault kind only labels it for logs and metrics.
FAILURE_MESSAGES: dict[bool, str] = {
    True: "batch failed, nothing acknowledged: Lambda retries it",
    False: "batch failed, nothing acknowledged: retrying cannot change that",
}


def fault_kind(error: Exception) -> str:
    return next((kind for type_, kind in FAULT_KINDS.items() if isinstance(error, type_)), "unexpected")


@lru_cache(maxsize=1)
def _model_cache() -> ModelCache:
    settings = get_settings()
    return ModelCache(
        name=settings.model_name,
        alias=settings.model_alias,
        refresh_seconds=settings.model_refresh_seconds,
        challenger_alias=settings.challenger_alias,
    )


def _engine() -> Engine:
    return get_engine(get_settings().resolved_database_url)


def _score_and_write(
    records: UserRecords, *, models: ModelCache, engine: Engine, now: datetime, started: float
) -> BatchMetrics:
    decoded = decode_columns(records.decodable_payloads)
    serving = models.serving() if len(decoded) else None
    scored = score(records, decoded, serving.champion, challenger=serving.challenger) if serving else None
    model = serving.champion if serving else None
    # Stamped after scoring, just before the write: the latency panel measures arrival to stored.
    written_at = datetime.now(tz=UTC)
    rejects = rejected_rows(records, [*records.rejections, *decoded.rejections], at=written_at)
    result = write_batch(engine, scored=scored, rejects=rejects, scored_at=written_at)
    oldest = min(records.arrival_times, default=None)
    return BatchMetrics(
        records_in=len(records),
        scored=result.inserted,
        duplicates=result.duplicates,
        rejected=len(rejects),
        batch_latency_ms=round((time.perf_counter() - started) * 1000, 2),
        oldest_record_age_s=None if oldest is None else round(now.timestamp() - oldest, 3),
        model_name=model.name if model else None,
        model_version=model.version if model else None,
        challenger_version=scored.challenger_version if scored is not None else None,
    )


def handle(event: dict[str, Any], *, models: ModelCache, engine: Engine, incarnations: IncarnationOf) -> dict[str, Any]:
    started = time.perf_counter()
    records: UserRecords | None = None
    try:
        records = user_records(event, incarnation_of=incarnations)
        now = datetime.now(tz=UTC)
        metrics = _score_and_write(records, models=models, engine=engine, now=now, started=started)
    except Exception as exc:
        kind, retryable = fault_kind(exc), is_retryable(exc)
        if isinstance(exc, StaleDeliveryIdsError) and isinstance(incarnations, StreamIncarnations):
            incarnations.forget({record.get("eventSourceARN", "") for record in event.get("Records", [])})
        log.error(
            FAILURE_MESSAGES[retryable],
            extra=fields(
                fault=kind,
                retryable=retryable,
                error=str(exc),
                records_in=len(records) if records is not None else None,
            ),
            exc_info=kind == "unexpected",
        )
        raise
    log.info("batch scored", extra=fields(**metrics.model_dump()))
    publish(metrics, at=now, sink=metrics_sink)
    return {"batchItemFailures": []}


@lru_cache(maxsize=1)
def _stream_incarnations() -> StreamIncarnations:
    return StreamIncarnations()


def lambda_handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    return handle(event, models=_model_cache(), engine=_engine(), incarnations=_stream_incarnations())
