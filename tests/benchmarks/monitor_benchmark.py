"""Window evaluation time and peak memory from 1,000 to 1,000,000 rows: the monitor against plain Evidently.

One database holds four five-minute windows of 1k, 10k, 100k and 1M scored rows, generated from the
registered model's reference (``data.synthetic``, resampled, so the verdict is "no drift") and scored by
the model; it is a fresh SQLite file and, when a server is reachable, a fresh Postgres database (created
and dropped here, like the test fixtures). Each window size is measured in a process of its own, so its
peak RSS is that of one size (``VmHWM``: ``getrusage``'s ``ru_maxrss`` survives ``exec``, so a child would
report its parent's peak, here the process holding all the generated rows):

- seconds, peak_rss_mb: ``evaluate_stored_window`` end to end from SQLite (row count, read or sample, exact
  counts, Evidently, the HTML report), median of three after a warm-up on the smallest window;
  postgres_seconds the same from Postgres (all sizes in one process)
- full_evidently_seconds, full_peak_rss_mb: plain Evidently on every row (``evaluate_window`` with all rows
  in memory and no summary, what the monitor did before), once; full_load_seconds: reading every row first
- decisions_match: ours and plain Evidently agree on every column's drift verdict, the dataset drift and the
  prediction drift
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from churn_common.database import get_engine, predictions
from churn_common.registry import TARGET_COLUMN
from churn_common.schema import FEATURE_COLUMNS, LABEL_COLUMN
from churn_common.settings import get_settings

WINDOW_ROWS: tuple[int, ...] = (1_000, 10_000, 100_000, 1_000_000)
FILE_ROWS = 10_000
REPEATS = 3
TARGET_SECONDS = 5.0
FIRST_WINDOW_START = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)
WINDOW_SECONDS = 300
POSTGRES_ADMIN_URL = os.environ.get("TEST_POSTGRES_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
_SQLITE_TIME_FORMAT = "%Y-%m-%d %H:%M:%S.%f"
_TIME_COLUMNS = frozenset({"event_time", "arrival_time", "scored_at"})
_REPO_ROOT = Path(__file__).resolve().parents[2]


def window_at(index: int) -> Any:
    from batch_monitor.core import Window

    start = FIRST_WINDOW_START + timedelta(seconds=index * WINDOW_SECONDS)
    return Window(start, start + timedelta(seconds=WINDOW_SECONDS))


# --- data -----------------------------------------------------------------------------------------------


def scored_window(n_rows: int, *, index: int, base: pd.DataFrame, model: Any) -> pd.DataFrame:
    """Rows as the scorer writes them: files of ``FILE_ROWS`` records, event times spread over the window."""
    from data.synthetic import generate

    frame = generate(n_rows=n_rows, seed=index + 1, base=base)
    window = window_at(index)
    probabilities = model.predict_proba(frame[list(FEATURE_COLUMNS)].to_numpy(dtype=np.float32))
    step_us = window.seconds * 10**6 // n_rows
    times = pd.Series(window.start + pd.to_timedelta(np.arange(n_rows) * step_us, unit="us"))
    rows = pd.Series(np.arange(n_rows) % FILE_ROWS + 1)
    sources = pd.Series(np.arange(n_rows) // FILE_ROWS).map(lambda f: f"w{index}f{f:06d}")
    out = pd.DataFrame(
        {
            "event_id": "shardId-000000000000:" + pd.Series(np.arange(n_rows) + index * 10**7).astype(str) + ":0",
            "record_id": sources + ":" + rows.astype(str),
            "source_id": sources,
            "row": rows,
            "event_time": times,
            "arrival_time": times,
            "scored_at": times,
            "model_name": get_settings().model_name,
            "model_version": model.version,
            "churn_probability": probabilities.astype("float64"),
            "churn_prediction": (probabilities >= 0.5).astype("int64"),
            "label": frame[LABEL_COLUMN].astype("int64"),
        }
    )
    for column in FEATURE_COLUMNS:
        out[column] = frame[column].to_numpy()
    # Columns a window of the serving version alone leaves empty (no shadow-scored challenger, no customer ids).
    for column in predictions.columns:
        if column.name not in out and column.nullable:
            out[column.name] = None
    return out[[c.name for c in predictions.columns]]


@contextmanager
def _without_secondary_indexes(engine: Any) -> Iterator[None]:
    """Bulk loads are several times faster when the indexes are built once afterwards."""
    for index in predictions.indexes:
        index.drop(engine)
    try:
        yield
    finally:
        for index in predictions.indexes:
            index.create(engine)


def load_sqlite(engine: Any, frames: list[pd.DataFrame]) -> None:
    columns = [c.name for c in predictions.columns]
    statement = f"INSERT INTO predictions ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
    with _without_secondary_indexes(engine):
        raw = engine.raw_connection()
        try:
            for frame in frames:
                values = [
                    frame[c].dt.strftime(_SQLITE_TIME_FORMAT).tolist() if c in _TIME_COLUMNS else frame[c].tolist()
                    for c in columns
                ]
                raw.driver_connection.executemany(statement, zip(*values, strict=True))
            raw.commit()
        finally:
            raw.close()


def load_postgres(engine: Any, frames: list[pd.DataFrame]) -> None:
    import pyarrow as pa
    import pyarrow.csv as pa_csv

    columns = ", ".join(c.name for c in predictions.columns)
    options = pa_csv.WriteOptions(include_header=False)
    with _without_secondary_indexes(engine):
        raw = engine.raw_connection()
        try:
            with raw.driver_connection.cursor() as cursor:
                for frame in frames:
                    buffer = io.BytesIO()
                    pa_csv.write_csv(pa.Table.from_pandas(frame, preserve_index=False), buffer, write_options=options)
                    with cursor.copy(f"COPY predictions ({columns}) FROM STDIN WITH (FORMAT csv)") as copy:
                        copy.write(buffer.getvalue())
            raw.commit()
        finally:
            raw.close()
    with engine.begin() as connection:
        connection.exec_driver_sql("ANALYZE predictions")


@contextmanager
def postgres_database() -> Iterator[str | None]:
    """A database of its own on the local server, dropped afterwards; ``None`` without a server."""
    import psycopg

    name = f"churn_bench_{uuid.uuid4().hex[:10]}"
    try:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=2) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError:
        yield None
        return
    url = f"{POSTGRES_ADMIN_URL.rsplit('/', 1)[0].replace('postgresql://', 'postgresql+psycopg://', 1)}/{name}"
    try:
        yield url
    finally:
        from churn_common.database import dispose_engine

        dispose_engine(url)
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- one measurement per process ------------------------------------------------------------------------


def _verdicts(evaluation: Any) -> dict[str, Any]:
    return {
        "drifted_columns": sorted(c.column for c in evaluation.drifted_columns),
        "dataset_drift": evaluation.dataset_drift,
        "prediction_drift": evaluation.prediction_drift.drifted,
        "drift_share": evaluation.drift_share,
        "f1": evaluation.f1,
    }


def peak_rss_mb() -> float:
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(*, url: str, indexes: str, mode: str, reference_path: Path, model_version: str) -> list[dict[str, Any]]:
    from batch_monitor.evaluation.drift import evaluate_window
    from batch_monitor.evaluation.stored_window import evaluate_stored_window
    from batch_monitor.window_data.reading import load_window

    engine = get_engine(url)
    reference = pd.read_parquet(reference_path)
    where = {"model_name": get_settings().model_name, "model_version": model_version}

    def ours(index: int) -> Any:
        return evaluate_stored_window(engine, window=window_at(index), reference=lambda: reference, **where)

    def full(index: int) -> tuple[Any, dict[str, float]]:
        started = time.perf_counter()
        rows = load_window(engine, window=window_at(index), **where)
        loaded = time.perf_counter()
        every_row = {"summary_points": len(rows) + 1, "quality_report_rows": len(rows) + 1}
        evaluation = evaluate_window(rows, reference, window=window_at(index), model_version=model_version, **every_row)
        evaluated = time.perf_counter()
        return evaluation, {"full_load_seconds": loaded - started, "full_evidently_seconds": evaluated - loaded}

    ours(0)  # warm-up: Evidently, plotly and the database connection
    results = []
    for index in map(int, indexes.split(",")):
        if mode == "ours":
            timings, evaluation = [], None
            for _ in range(REPEATS):
                started = time.perf_counter()
                evaluation = ours(index)
                timings.append(time.perf_counter() - started)
            result = {"seconds": statistics.median(timings), "n_drift_rows": evaluation.n_drift_rows}
        else:
            evaluation, result = full(index)
        results.append(
            {**result, "n_rows": evaluation.n_rows, "peak_rss_mb": peak_rss_mb(), "verdicts": _verdicts(evaluation)}
        )
    return results


def _in_process(**arguments: Any) -> list[dict[str, Any]]:
    command = [sys.executable, "-m", "tests.benchmarks.monitor_benchmark"]
    for name, value in arguments.items():
        command += [f"--{name.replace('_', '-')}", str(value)]
    done = subprocess.run(command, cwd=_REPO_ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"measurement failed: {' '.join(command)}\n{done.stderr[-4000:]}")
    return list(json.loads(done.stdout.strip().splitlines()[-1]))


# --- the benchmark --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Databases:
    sqlite: str
    postgres: str | None


def _fill(databases: Databases, frames: list[pd.DataFrame]) -> dict[str, float]:
    seconds = {}
    started = time.perf_counter()
    load_sqlite(get_engine(databases.sqlite), frames)
    seconds["sqlite"] = round(time.perf_counter() - started, 1)
    if databases.postgres is not None:
        started = time.perf_counter()
        load_postgres(get_engine(databases.postgres), frames)
        seconds["postgresql"] = round(time.perf_counter() - started, 1)
    return seconds


_DECISIVE = ("drifted_columns", "dataset_drift", "prediction_drift")


def _window_result(
    n_rows: int, ours: dict[str, Any], full: dict[str, Any], postgres: dict[str, Any] | None
) -> dict[str, Any]:
    if ours["n_rows"] != n_rows or full["n_rows"] != n_rows:
        raise RuntimeError(f"a window should hold {n_rows} rows, not {ours['n_rows']} or {full['n_rows']}")
    runs = [ours, *([postgres] if postgres else [])]
    return {
        "rows": n_rows,
        "seconds": round(ours["seconds"], 3),
        "peak_rss_mb": round(ours["peak_rss_mb"], 1),
        "postgres_seconds": None if postgres is None else round(postgres["seconds"], 3),
        "full_evidently_seconds": round(full["full_evidently_seconds"], 3),
        "full_load_seconds": round(full["full_load_seconds"], 3),
        "full_peak_rss_mb": round(full["peak_rss_mb"], 1),
        "drift_rows": ours["n_drift_rows"],
        "decisions_match": all(run["verdicts"][k] == full["verdicts"][k] for run in runs for k in _DECISIVE),
        "drift_share": {"ours": ours["verdicts"]["drift_share"], "full": full["verdicts"]["drift_share"]},
        "f1": {"ours": ours["verdicts"]["f1"], "full": full["verdicts"]["f1"]},
    }


def run() -> dict[str, Any]:
    from batch_monitor.evaluation.drift import DRIFT_SUMMARY_POINTS
    from batch_monitor.evaluation.reference import load_reference
    from batch_monitor.window_data.reading import SAMPLE_ROWS
    from stream_scorer.model import load_booster, resolve_alias
    from training.train import ensure_model

    ensure_model()
    settings = get_settings()
    model = load_booster(resolve_alias(settings.model_name, settings.model_alias))
    reference = load_reference(settings.model_name, model.version)
    base = reference.loc[:, [*FEATURE_COLUMNS, TARGET_COLUMN]].rename(columns={TARGET_COLUMN: LABEL_COLUMN})
    frames = [scored_window(n, index=i, base=base, model=model) for i, n in enumerate(WINDOW_ROWS)]

    with tempfile.TemporaryDirectory(prefix="monitor-bench-") as tmp, postgres_database() as postgres_url:
        databases = Databases(sqlite=f"sqlite:///{tmp}/bench.db", postgres=postgres_url)
        load_seconds = _fill(databases, frames)
        del frames
        reference_path = Path(tmp) / "reference.parquet"
        reference.to_parquet(reference_path, index=False)
        common = {"reference_path": reference_path, "model_version": model.version}
        ours = [_in_process(url=databases.sqlite, indexes=i, mode="ours", **common)[0] for i in range(len(WINDOW_ROWS))]
        full = [_in_process(url=databases.sqlite, indexes=i, mode="full", **common)[0] for i in range(len(WINDOW_ROWS))]
        every = ",".join(str(i) for i in range(len(WINDOW_ROWS)))
        postgres = (
            [None] * len(WINDOW_ROWS)
            if postgres_url is None
            else _in_process(url=postgres_url, indexes=every, mode="ours", **common)
        )
        windows = [_window_result(*measured) for measured in zip(WINDOW_ROWS, ours, full, postgres, strict=True)]

    largest = windows[-1]
    return {
        "windows": windows,
        "databases": ["sqlite", *(["postgresql"] if postgres_url else [])],
        "model_version": model.version,
        "reference_rows": len(reference),
        "sample_rows": SAMPLE_ROWS,
        "summary_points": DRIFT_SUMMARY_POINTS,
        "load_seconds": load_seconds,
        "target_seconds": TARGET_SECONDS,
        "target_met": max(s for s in (largest["seconds"], largest["postgres_seconds"]) if s is not None)
        <= TARGET_SECONDS,
    }


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description="one measurement of the monitor benchmark (used by run())")
    parser.add_argument("--url", required=True)
    parser.add_argument("--indexes", required=True, help="comma-separated window indexes")
    parser.add_argument("--mode", choices=("ours", "full"), required=True)
    parser.add_argument("--reference-path", type=Path, required=True)
    parser.add_argument("--model-version", required=True)
    args = parser.parse_args(argv)
    with suppress(BrokenPipeError):
        print(json.dumps(measure(**vars(args))))


if __name__ == "__main__":
    main(sys.argv[1:])
