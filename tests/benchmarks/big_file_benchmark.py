"""A file far longer than one producer invocation, end to end on the embedded local stack.

``BIG_FILE_MB`` (512) of rows in the published format, a bad row every 100,000, uploaded to the input
prefix of a stack whose producer has the deployed timeout (``BIG_FILE_TIMEOUT_SECONDS``, default the
mappings file's 300 s) and hands the rest of the file on before it (``PRODUCER_HANDOFF_SECONDS``). Measured:
seconds from the upload to the manifest and to the last stored prediction, the segments (invocations) the
file took, the producer's share of each, the stack process's peak RSS (emulator included: it keeps the
object and the stream in memory) and the accounting: rows in == scored + rejected, each record once.
Needs about 3 GB of memory and, on two cores, about half an hour for 512 MB; not part of the default run.
"""

from __future__ import annotations

import logging
import os
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from tests.local_servers import free_port

SIZE_MB = int(os.environ.get("BIG_FILE_MB", "512"))
TIMEOUT_SECONDS = os.environ.get("BIG_FILE_TIMEOUT_SECONDS")
FRAME_ROWS = 20_000
PROGRESS_EVERY_SECONDS = 15.0
WAIT_LIMIT_SECONDS = 4 * 3600


def _peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _stored(engine: Any, source_id: str) -> tuple[int, int, int]:
    from churn_common.database import predictions, rejected_records

    with engine.connect() as connection:
        total, distinct = connection.execute(
            select(func.count(), func.count(func.distinct(predictions.c.record_id))).where(
                predictions.c.source_id == source_id
            )
        ).one()
        rejected = connection.execute(
            select(func.count()).select_from(rejected_records).where(rejected_records.c.source_id == source_id)
        ).scalar_one()
    return int(total), int(distinct), int(rejected)


def run() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="big-file-bench-") as tmp:
        state = Path(tmp)
        os.environ.update(
            {
                "LOCAL_STATE_DIR": str(state / "state"),
                "LOCAL_AWS_PORT": str(free_port()),
                "DATABASE_URL": f"sqlite:///{state / 'churn.db'}",
                "MLFLOW_TRACKING_URI": f"sqlite:///{state / 'mlflow.db'}",
            }
        )
        if TIMEOUT_SECONDS:
            os.environ["LOCAL_PRODUCER_TIMEOUT_SECONDS"] = TIMEOUT_SECONDS
        from churn_common.aws import forget_clients
        from churn_common.settings import get_settings

        get_settings.cache_clear()
        forget_clients()
        return _run(state)


def _run(state: Path) -> dict[str, Any]:
    from churn_common.database import get_engine
    from churn_common.settings import get_settings
    from infra.local.driver import upload, wait_for_manifest
    from infra.local.resources import event_source_mappings
    from infra.local.stack import LocalStack
    from tests.benchmarks.producer_benchmark import _frame, _write_big_csv
    from training.train import train_and_register

    logging.getLogger("stream_scorer").setLevel(logging.WARNING)  # one line per batch would drown the progress
    train_and_register()
    path = state / "big.csv"
    rows, bad = _write_big_csv(path, size_mb=SIZE_MB, frame=_frame(FRAME_ROWS))
    size_mb = round(path.stat().st_size / 2**20, 1)
    print(f"big file: {size_mb} MB, {rows:,} rows ({bad} bad)", flush=True)
    with LocalStack(with_prefect=False):
        settings = get_settings()
        timeout = (
            settings.local_producer_timeout_seconds or event_source_mappings()["producer"]["function_timeout_seconds"]
        )
        engine = get_engine(settings.resolved_database_url)
        started = time.perf_counter()
        version = upload(path)
        uploaded = time.perf_counter()
        path.unlink()
        print(f"uploaded in {uploaded - started:.1f} s; producing ...", flush=True)
        manifest = wait_for_manifest(version, timeout=WAIT_LIMIT_SECONDS, poll=1.0)
        produced = time.perf_counter()
        print(f"manifest after {produced - uploaded:.0f} s: {manifest.segments} segments", flush=True)
        expected = manifest.records_sent
        last_report = 0.0
        while (stored := _stored(engine, manifest.source_id))[1] < expected:
            now = time.perf_counter()
            if now - last_report > PROGRESS_EVERY_SECONDS:
                print(f"scored {stored[1]:,}/{expected:,} after {now - uploaded:.0f} s", flush=True)
                last_report = now
            if now - uploaded > WAIT_LIMIT_SECONDS:
                raise TimeoutError(f"only {stored[1]}/{expected} stored")
            time.sleep(1.0)
        scored = time.perf_counter()
        total, distinct, scorer_rejected = _stored(engine, manifest.source_id)
    result = {
        "size_mb": size_mb,
        "rows_in": rows,
        "rows_read": manifest.rows_read,
        "records_sent": manifest.records_sent,
        "rejected_by_producer": manifest.rows_rejected,
        "rejected_by_scorer": scorer_rejected,
        "scored_unique": distinct,
        "stored_twice": total - distinct,
        "rows_accounted": rows == distinct + manifest.rows_rejected + scorer_rejected,
        "producer_timeout_seconds": timeout,
        "handoff_seconds": settings.producer_handoff_seconds,
        "segments": manifest.segments,
        "upload_seconds": round(uploaded - started, 1),
        "seconds_to_manifest": round(produced - uploaded, 1),
        "seconds_to_last_prediction": round(scored - uploaded, 1),
        "rows_per_second_end_to_end": round(rows / (scored - uploaded)),
        "peak_rss_mb_stack_process": _peak_rss_mb(),
    }
    if not result["rows_accounted"] or result["stored_twice"]:
        raise AssertionError(f"the big file was not accounted for: {result}")
    return result
