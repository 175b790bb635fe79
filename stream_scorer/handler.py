"""Lambda entry point of the stream scorer: ``stream_scorer.handler.lambda_handler``.

Poison records are rejected (table ``rejected_records``) and never block the shard; a transient
fault (database, registry) raises, so the whole batch is retried; writes are idempotent, so the
retry cannot double-count.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Engine

from churn_common.database import get_engine
from churn_common.settings import get_settings
from churn_common.wire import decode_batch, peek_source_id
from stream_scorer.kinesis_event import user_records
from stream_scorer.model import ModelCache
from stream_scorer.scoring import prediction_rows
from stream_scorer.sink import write_batch

log = logging.getLogger("stream_scorer")
REJECT_STAGE = "stream_scorer"


def storable_payload(payload: bytes) -> str:
    """Raw payload as text a database keeps verbatim; anything else (binary, NUL bytes) as base64."""
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is None or "\x00" in text:
        return "base64:" + base64.b64encode(payload).decode()
    return text


@lru_cache(maxsize=1)
def _model_cache() -> ModelCache:
    settings = get_settings()
    return ModelCache(
        name=settings.model_name, alias=settings.model_alias, refresh_seconds=settings.model_refresh_seconds
    )


def _engine() -> Engine:
    return get_engine(get_settings().resolved_database_url)


def handle(event: dict[str, Any], *, models: ModelCache, engine: Engine) -> dict[str, Any]:
    started = time.perf_counter()
    records = user_records(event)
    decoded = decode_batch([r.payload for r in records])
    model = models.get()
    now = datetime.now(tz=UTC)
    rows = prediction_rows(decoded.records, [records[i] for i in decoded.indices], model, scored_at=now)
    rejects = [
        {
            "event_id": records[r.index].event_id,
            "stage": REJECT_STAGE,
            "source_id": peek_source_id(records[r.index].payload),
            "reason": r.reason,
            "payload": storable_payload(records[r.index].payload),
            "rejected_at": now,
        }
        for r in decoded.rejections
    ]
    result = write_batch(engine, rows=rows, rejects=rejects)
    oldest = min((r.arrival_time for r in records), default=now)
    log.info(
        json.dumps(
            {
                "message": "batch scored",
                "records_in": len(records),
                "scored": result.inserted,
                "duplicates": result.duplicates,
                "rejected": len(rejects),
                "model_version": model.version,
                "batch_latency_ms": round((time.perf_counter() - started) * 1000, 2),
                "oldest_record_age_s": round((now - oldest).total_seconds(), 3),
            }
        )
    )
    return {"batchItemFailures": []}


def lambda_handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    return handle(event, models=_model_cache(), engine=_engine())
