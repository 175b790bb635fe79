"""Scorer throughput on one 10,000-record aggregated Kinesis event, all variants in one process.

- handler: the real handler, including the idempotent write (SQLite by default, DATABASE_URL for Postgres)
- compute: the handler's work without the write (deaggregate, decode, validate, predict, build rows)
- floor: decode and predict only, on the same payloads
- per_record_baseline: the tutorial pattern (base64, json.loads, pyfunc predict on a one-row DataFrame),
  timed on 500 records and scaled
"""

from __future__ import annotations

import base64
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import numpy as np
import orjson

from churn_common.database import get_engine
from churn_common.schema import FEATURE_COLUMNS
from churn_common.settings import get_settings
from churn_common.wire import FEATURE_SLICE, decode_batch
from stream_scorer.handler import handle
from stream_scorer.kinesis_event import user_records
from stream_scorer.model import ModelCache
from stream_scorer.scoring import prediction_rows
from tests.factories import encoded, kinesis_event, records_from_frame

EVENT_RECORDS = 10_000
BASELINE_RECORDS = 500
REPEATS = 5


def _median_seconds(action: Callable[[], object], *, repeats: int = REPEATS) -> float:
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)


def _event_payloads() -> list[bytes]:
    from data.dataset import locate_training_data, read_churn_csv

    path, _ = locate_training_data(get_settings())
    frame = read_churn_csv(path)
    frame = frame.sample(n=EVENT_RECORDS, replace=True, random_state=7).reset_index(drop=True)
    return encoded(records_from_frame(frame, source="bench://scorer"))


def run() -> dict[str, Any]:
    from training.train import ensure_model

    ensure_model()
    settings = get_settings()
    models = ModelCache(name=settings.model_name, alias=settings.model_alias, refresh_seconds=3600)
    model = models.get()
    payloads = _event_payloads()
    events = [kinesis_event(payloads, shard_id=f"shardId-{i:012d}") for i in range(REPEATS)]
    event = events[0]

    with tempfile.TemporaryDirectory() as tmp:
        url = settings.database_url or f"sqlite:///{tmp}/bench.db"
        engine = get_engine(url)
        pending = iter(events)
        handler_s = _median_seconds(lambda: handle(next(pending), models=models, engine=engine))

    def compute() -> None:
        records = user_records(event)
        decoded = decode_batch([r.payload for r in records])
        prediction_rows(decoded.records, [records[i] for i in decoded.indices], model, scored_at=datetime.now(tz=UTC))

    def floor() -> None:
        rows = [orjson.loads(p)[FEATURE_SLICE] for p in payloads]
        model.predict_proba(np.array(rows, dtype=np.float32))

    compute_s = _median_seconds(compute)
    floor_s = _median_seconds(floor)

    import mlflow.pyfunc
    import pandas as pd

    pyfunc = mlflow.pyfunc.load_model(f"models:/{settings.model_name}@{settings.model_alias}")
    raw = [base64.b64encode(p) for p in payloads[:BASELINE_RECORDS]]

    def per_record() -> None:
        for blob in raw:
            values = json.loads(base64.b64decode(blob))
            frame = pd.DataFrame([values[FEATURE_SLICE]], columns=list(FEATURE_COLUMNS)).astype("float32")
            pyfunc.predict(frame)

    baseline_s = _median_seconds(per_record, repeats=3) * EVENT_RECORDS / BASELINE_RECORDS

    def rate(seconds: float) -> float:
        return round(EVENT_RECORDS / seconds, 1)

    return {
        "records": EVENT_RECORDS,
        "database": engine.dialect.name,
        "model_version": model.version,
        "handler": {"records_per_s": rate(handler_s), "median_s": round(handler_s, 4)},
        "compute": {"records_per_s": rate(compute_s), "median_s": round(compute_s, 4)},
        "floor": {"records_per_s": rate(floor_s), "median_s": round(floor_s, 4)},
        "per_record_baseline": {"records_per_s": rate(baseline_s), "scaled_from": BASELINE_RECORDS},
        "ratios": {
            "handler_vs_per_record_baseline": round(baseline_s / handler_s, 1),
            "compute_vs_floor": round(floor_s / compute_s, 3),
        },
    }
