"""Scorer throughput and cold start, all on one 10,000-record Kinesis event and one registered model.

The event is made by the producer's own code (CSV split, record building, per-shard KPL aggregation by
``KinesisWriter``) onto an emulator stream, read back with GetRecords and shaped by the local Lambda
service, exactly as the scorer receives it. The model is the local registry's serving version, reached
through an ``mlflow server`` over HTTP, as the Lambda reaches it.

- handler: the real handler, including the idempotent write (Postgres when reachable, else SQLite)
- shadow: the handler without and with a challenger (shadow scoring: a second predict, one more column),
  alternating runs in this process; the challenger is a registry version of the serving model's own
  artifacts (same size and cost as the champion), under an alias of the benchmark's, removed afterwards
- compute: the handler's work without the write (deaggregate, decode, validate, predict, build columns)
- floor: decode and predict only, same event (base64, KPL unpack, JSON, feature matrix, predict)
- per_record_baseline: the tutorial pattern (base64, json.loads, pyfunc predict on a one-row DataFrame),
  timed on 500 records and scaled
- cold_start_s: fresh process, import + alias resolution + model load, median of 5; ``ours`` with the
  Lambda image's packages (no MLflow, pandas or scikit-learn), ``pyfunc`` = ``mlflow.pyfunc.load_model``
- handler.peak_rss_mb: a fresh process like a Lambda container, importing, loading and handling the event
"""

from __future__ import annotations

import base64
import io
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import orjson
from sqlalchemy import Engine, delete, func, select

from churn_common.database import dispose_engine, get_engine, predictions
from churn_common.schema import FEATURE_COLUMNS
from churn_common.settings import Settings, get_settings
from churn_common.wire import FEATURE_SLICE, encode, source_id_for
from infra.local.lambda_service import kinesis_event_record
from producer.kinesis_writer import KinesisWriter
from producer.records import customer_record
from producer.splitter import ValidRow, split_csv
from stream_scorer.handler import handle
from stream_scorer.kinesis_event import unpack_aggregate, user_records
from stream_scorer.model import LoadedModel, ModelCache
from stream_scorer.rejects import rejected_rows
from stream_scorer.scoring import feature_matrix, score
from stream_scorer.validation import decode_columns
from tests.factories import FIXED_INCARNATION, fixed_incarnation
from tests.local_servers import free_port, mlflow_server

REPO_ROOT = Path(__file__).resolve().parents[2]
EVENT_RECORDS = 10_000
BASELINE_RECORDS = 500
REPEATS = 5
COLD_START_RUNS = 5
# MLflow 3 starts a pool of job-runner processes with the server by default (~250 MB and a burst of CPU
# each); the registry needs none of them.
CHILD_TIMEOUT_SECONDS = 300
POSTGRES_ADMIN_URL = os.environ.get("TEST_POSTGRES_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
ABSENT_FROM_THE_LAMBDA_IMAGE = ("mlflow", "pandas", "sklearn")
SHADOW_REPEATS = 11  # runs of each variant, alternating
BENCHMARK_CHALLENGER_ALIAS = "benchmark-challenger"
BENCHMARK_CHALLENGER_TAG = "scorer_benchmark_challenger"
LOGGED_MODEL_SCHEME = "models:/"
TARGETS = {
    "handler_vs_per_record_baseline": 100.0,
    "compute_vs_floor": 0.5,
    "cold_start_pyfunc_vs_ours": 3.0,
    "handler_with_challenger_vs_without": 0.8,
}

# Child processes: each measures from its first statement (interpreter start-up is the same for both).
OURS_PROBE = """
import json, sys, time
started = time.perf_counter()
for name in {absent!r}:
    sys.modules[name] = None
from stream_scorer.handler import _model_cache
model = _model_cache().get()
print(json.dumps({{"seconds": time.perf_counter() - started, "version": model.version}}))
"""
PYFUNC_PROBE = """
import json, time
started = time.perf_counter()
import mlflow.pyfunc
model = mlflow.pyfunc.load_model({uri!r})
print(json.dumps({{"seconds": time.perf_counter() - started}}))
"""
# Peak RSS of this process image: VmHWM, since ru_maxrss carries over the parent's peak across fork + exec.
RSS_PROBE = """
import json, re, sys
for name in {absent!r}:
    sys.modules[name] = None
from stream_scorer import handler
# No stream to ask for its incarnation here (no emulator): a fixed one; the rest is the handler's own path.
handler._stream_incarnations = lambda: lambda _stream_arn: {incarnation!r}
with open({event_path!r}) as file:
    handler.lambda_handler(json.load(file))
with open("/proc/self/status") as status:
    peak_kb = int(re.search(r"VmHWM:\\s+(\\d+) kB", status.read()).group(1))
print(json.dumps({{"peak_rss_mb": peak_kb / 1024}}))
"""


def _median_seconds(action: Callable[[], object], *, repeats: int = REPEATS) -> tuple[float, list[float]]:
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        timings.append(time.perf_counter() - started)
    return statistics.median(timings), timings


# --- the registry, served over HTTP ----------------------------------------------------------------------


def _absolute_sqlite(uri: str) -> str:
    path = Path(uri.removeprefix("sqlite:///"))
    return f"sqlite:///{path.resolve()}"


@contextmanager
def registry_server(settings: Settings, log_path: Path) -> Iterator[str]:
    """The configured registry over HTTP: the tracking server itself, or one started on the local store."""
    uri = settings.resolved_mlflow_uri
    if uri.startswith(("http://", "https://")):
        yield uri
        return
    with mlflow_server(
        backend_store_uri=_absolute_sqlite(uri), artifacts=settings.mlflow_artifact_root, log_path=log_path
    ) as url:
        yield url


@contextmanager
def tracking_uri(url: str) -> Iterator[None]:
    """Point this process's settings at ``url`` for the duration (as the Lambda's environment does)."""
    saved = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = url
    get_settings.cache_clear()
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = saved
        get_settings.cache_clear()


def _logged_model_id(source: str) -> str | None:
    """MLflow 3 sources name a logged model (``models:/m-...``), whose id a new version of it must be given."""
    return source.removeprefix(LOGGED_MODEL_SCHEME).split("/")[0] if source.startswith(LOGGED_MODEL_SCHEME) else None


@contextmanager
def benchmark_challenger(url: str, settings: Settings) -> Iterator[str]:
    """An alias of the benchmark's on a second version of the serving model's own artifacts (registered once,
    found by its tag afterwards: no new artifacts, no new version per run); the alias is removed afterwards."""
    from mlflow import MlflowClient

    client = MlflowClient(url, url)
    name = settings.model_name
    serving = client.get_model_version_by_alias(name, settings.model_alias)
    found = client.search_model_versions(f"name = '{name}' and tag.{BENCHMARK_CHALLENGER_TAG} = '{serving.version}'")
    challenger = found[0] if found else None
    if challenger is None:
        challenger = client.create_model_version(
            name,
            source=serving.source,
            run_id=serving.run_id,
            model_id=serving.model_id or _logged_model_id(serving.source),
            tags={BENCHMARK_CHALLENGER_TAG: serving.version},
            description=f"copy of version {serving.version} for the scorer benchmark's challenger",
        )
    client.set_registered_model_alias(name, BENCHMARK_CHALLENGER_ALIAS, challenger.version)
    try:
        yield BENCHMARK_CHALLENGER_ALIAS
    finally:
        client.delete_registered_model_alias(name, BENCHMARK_CHALLENGER_ALIAS)


# --- the event, made by the producer ---------------------------------------------------------------------


def _valid_csv(path: Path, n_rows: int) -> bytes:
    """``n_rows`` rows drawn (with replacement) from the rows of ``path`` that the producer accepts."""
    lines = path.read_bytes().splitlines(keepends=True)
    header = lines[0]
    valid = [lines[item.line - 1] for item in split_csv(io.BytesIO(path.read_bytes())) if isinstance(item, ValidRow)]
    rows = random.Random(7).choices(valid, k=n_rows)
    return b"".join([header, *(r if r.endswith(b"\n") else r + b"\n" for r in rows)])


def producer_event(settings: Settings, n_records: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """A Kinesis event of ``n_records`` customer records on one shard, as the producer puts them."""
    from moto.server import ThreadedMotoServer

    from data.dataset import locate_training_data

    data_path, _ = locate_training_data(settings)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        kinesis = boto3.client(
            "kinesis",
            endpoint_url=f"http://127.0.0.1:{port}",
            region_name=settings.aws_region,
            aws_access_key_id="bench",
            aws_secret_access_key="bench",
        )
        stream = "scorer-benchmark"
        kinesis.create_stream(StreamName=stream, ShardCount=1)
        kinesis.get_waiter("stream_exists").wait(StreamName=stream, WaiterConfig={"Delay": 0.1})
        split = split_csv(io.BytesIO(_valid_csv(data_path, n_records)))
        source_id = source_id_for(f"s3://{settings.bucket}/{settings.input_prefix}benchmark.csv", "bench")
        now = datetime.now(tz=UTC)
        with KinesisWriter(stream_name=stream, kinesis=kinesis) as writer:
            for item in split:
                assert isinstance(item, ValidRow), item
                record = customer_record(item.customer, source_id=source_id, row=item.row, event_time=now)
                writer.add(record.record_id, encode(record))
            stats = writer.flush()
        assert stats.user_records == n_records, stats
        (shard,) = kinesis.list_shards(StreamName=stream)["Shards"]
        iterator = kinesis.get_shard_iterator(
            StreamName=stream, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        records = kinesis.get_records(ShardIterator=iterator, Limit=10_000)["Records"]
        arn = kinesis.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]["StreamARN"]
        shape = {"shard_id": shard["ShardId"], "stream_arn": arn, "function_name": "stream_scorer"}
        event = {"Records": [kinesis_event_record(r, **shape, region=settings.aws_region) for r in records]}
    finally:
        server.stop()
    assert len(user_records(event, incarnation_of=fixed_incarnation)) == n_records
    built = {
        "by": "producer.splitter + producer.records + producer.kinesis_writer.KinesisWriter, emulator GetRecords",
        "source": data_path.name,
        "kinesis_records": len(records),
        "bytes": sum(len(r["Data"]) for r in records),
        "bytes_per_record": round(sum(len(r["Data"]) for r in records) / n_records, 1),
    }
    return event, built


def as_shard(event: dict[str, Any], shard_id: str) -> dict[str, Any]:
    """The same records under another shard id: new event ids (the records are stored again only into an
    emptied table, see :func:`timed_handle`)."""
    return {"Records": [{**r, "eventID": f"{shard_id}:{r['kinesis']['sequenceNumber']}"} for r in event["Records"]]}


# --- the database ------------------------------------------------------------------------------------------


@contextmanager
def benchmark_database(folder: Path) -> Iterator[str]:
    """A Postgres database of its own, dropped afterwards; SQLite when no server answers."""
    try:
        import psycopg

        with psycopg.connect(POSTGRES_ADMIN_URL, connect_timeout=2, autocommit=True) as connection:
            name = f"churn_bench_{uuid.uuid4().hex[:10]}"
            connection.execute(f'CREATE DATABASE "{name}"')
    except Exception:
        yield f"sqlite:///{folder / 'benchmark.db'}"
        return
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    url = f"{base}/{name}"
    try:
        yield url
    finally:
        dispose_engine(url)
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- fresh processes ---------------------------------------------------------------------------------------


def _child(code: str, environment: dict[str, str]) -> dict[str, Any]:
    completed = subprocess.run(
        [sys.executable, "-c", code],
        env=environment,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT_SECONDS,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"benchmark child failed:\n{completed.stderr[-3000:]}")
    return dict(json.loads(completed.stdout.strip().splitlines()[-1]))


def _child_environment(url: str, **extra: str) -> dict[str, str]:
    return {**os.environ, "MLFLOW_TRACKING_URI": url, "PYTHONPATH": str(REPO_ROOT), **extra}


def cold_starts(url: str, model_uri: str) -> dict[str, Any]:
    environment = _child_environment(url)
    ours = [OURS_PROBE.format(absent=ABSENT_FROM_THE_LAMBDA_IMAGE)] * COLD_START_RUNS
    ours_dev = [OURS_PROBE.format(absent=())] * COLD_START_RUNS
    pyfunc = [PYFUNC_PROBE.format(uri=model_uri)] * COLD_START_RUNS
    runs = {
        name: [round(_child(code, environment)["seconds"], 3) for code in codes]
        for name, codes in (("ours", ours), ("ours_with_dev_packages", ours_dev), ("pyfunc", pyfunc))
    }
    return {**{name: statistics.median(values) for name, values in runs.items()}, "runs": runs}


def handler_peak_rss_mb(url: str, database_url: str, event: dict[str, Any], folder: Path) -> float:
    event_path = folder / "event.json"
    event_path.write_text(json.dumps(event))
    code = RSS_PROBE.format(
        absent=ABSENT_FROM_THE_LAMBDA_IMAGE, event_path=str(event_path), incarnation=FIXED_INCARNATION
    )
    return round(float(_child(code, _child_environment(url, DATABASE_URL=database_url))["peak_rss_mb"]), 1)


# --- the measurements -------------------------------------------------------------------------------------


def compute_only(event: dict[str, Any], models: ModelCache) -> None:
    """What the handler does, without the write."""
    records = user_records(event, incarnation_of=fixed_incarnation)
    decoded = decode_columns(records.payloads)
    score(records, decoded, models.get())
    rejected_rows(records, decoded.rejections, at=datetime.now(tz=UTC))


def floor_only(event: dict[str, Any], model: LoadedModel) -> None:
    """Decode and predict, nothing else, the cheapest way known: base64, KPL unpack, JSON, one float32
    matrix built column-wise, one predict. No event parsing, validation, ids or output columns."""
    loads = orjson.loads
    rows = [
        loads(payload)
        for record in event["Records"]
        for payload in unpack_aggregate(base64.b64decode(record["kinesis"]["data"])) or ()
    ]
    columns = tuple(zip(*rows, strict=True))
    model.predict_proba(np.array(columns[FEATURE_SLICE], dtype=np.float32).T)


def per_record_seconds(event: dict[str, Any], model_uri: str) -> float:
    """The tutorial pattern, per record: base64 decode, json.loads, pyfunc predict on a one-row DataFrame."""
    import mlflow.pyfunc
    import pandas as pd

    pyfunc = mlflow.pyfunc.load_model(model_uri)
    blobs = [
        base64.b64encode(p) for p in user_records(event, incarnation_of=fixed_incarnation).payloads[:BASELINE_RECORDS]
    ]
    columns = list(FEATURE_COLUMNS)

    def per_record() -> None:
        for blob in blobs:
            values = json.loads(base64.b64decode(blob))
            frame = pd.DataFrame([values[FEATURE_SLICE]], columns=columns).astype("float32")
            pyfunc.predict(frame)

    seconds, _ = _median_seconds(per_record, repeats=3)
    return seconds * EVENT_RECORDS / BASELINE_RECORDS


@dataclass(frozen=True, slots=True)
class TimedBatch:
    seconds: float
    rows_with_challenger: int


def empty_predictions(engine: Engine) -> None:
    """The sink keeps each record id once: the same event is stored again only into an emptied table."""
    with engine.begin() as connection:
        connection.execute(delete(predictions))


def timed_handle(event: dict[str, Any], *, models: ModelCache, engine: Engine) -> TimedBatch:
    """One handler invocation that stores every record of ``event`` (the table emptied first, untimed)."""
    empty_predictions(engine)
    started = time.perf_counter()
    handle(event, models=models, engine=engine, incarnations=fixed_incarnation)
    seconds = time.perf_counter() - started
    with engine.connect() as connection:
        stored, shadowed = connection.execute(
            select(func.count(), func.count(predictions.c.challenger_probability))
        ).one()
    assert stored == EVENT_RECORDS, f"{stored} of {EVENT_RECORDS} records stored"
    return TimedBatch(seconds=seconds, rows_with_challenger=int(shadowed))


def shadow_runs(
    event: dict[str, Any], *, plain: ModelCache, shadow: ModelCache, engine: Engine
) -> dict[str, list[float]]:
    """Handler seconds without and with the challenger, alternating (each pair under the same machine load)."""
    runs: dict[str, list[float]] = {"without_challenger": [], "with_challenger": []}
    for index in range(SHADOW_REPEATS):
        for variant, prefix, models in (("without_challenger", "plain", plain), ("with_challenger", "shadow", shadow)):
            timed = timed_handle(as_shard(event, f"shardId-{prefix}{index:07d}"), models=models, engine=engine)
            assert timed.rows_with_challenger == (EVENT_RECORDS if models is shadow else 0), timed
            runs[variant].append(timed.seconds)
    return runs


def challenger_predict_seconds(event: dict[str, Any], challenger: LoadedModel) -> float:
    """What shadow scoring adds to the compute of a batch: the challenger's predict on the batch's matrix."""
    features = feature_matrix(decode_columns(user_records(event, incarnation_of=fixed_incarnation).payloads).columns)
    seconds, _ = _median_seconds(lambda: challenger.predict_proba(features))
    return seconds


def shadow_summary(runs: dict[str, list[float]], *, challenger_version: str, predict_s: float) -> dict[str, Any]:
    medians = {variant: statistics.median(seconds) for variant, seconds in runs.items()}
    return {
        "challenger_version": challenger_version,
        "challenger_predict_median_s": round(predict_s, 4),
        **{
            variant: {
                "records_per_s": round(EVENT_RECORDS / medians[variant], 1),
                "median_s": round(medians[variant], 4),
                "runs_s": [round(t, 4) for t in runs[variant]],
            }
            for variant in runs
        },
        "ratio": round(medians["without_challenger"] / medians["with_challenger"], 3),
    }


def run() -> dict[str, Any]:
    from training.train import ensure_model

    ensure_model()
    settings = get_settings()
    model_uri = f"models:/{settings.model_name}@{settings.model_alias}"
    state = settings.local_state_dir / "bench"
    state.mkdir(parents=True, exist_ok=True)
    event, built = producer_event(settings, EVENT_RECORDS)

    with (
        tempfile.TemporaryDirectory() as tmp,
        registry_server(settings, state / "mlflow-server.log") as url,
        tracking_uri(url),
        benchmark_database(Path(tmp)) as database_url,
    ):
        models = ModelCache(name=settings.model_name, alias=settings.model_alias, refresh_seconds=3600)
        model = models.get()
        engine = get_engine(database_url)
        handle(as_shard(event, "shardId-warmup"), models=models, engine=engine, incarnations=fixed_incarnation)
        handler_runs = [
            timed_handle(as_shard(event, f"shardId-bench{i:07d}"), models=models, engine=engine).seconds
            for i in range(REPEATS)
        ]
        handler_s = statistics.median(handler_runs)
        with benchmark_challenger(url, settings) as challenger_alias:
            shadow = ModelCache(
                name=settings.model_name,
                alias=settings.model_alias,
                refresh_seconds=3600,
                challenger_alias=challenger_alias,
            )
            challenger = shadow.serving().challenger
            assert challenger is not None, "the benchmark's challenger did not load"
            handle(
                as_shard(event, "shardId-warmupshadow"), models=shadow, engine=engine, incarnations=fixed_incarnation
            )
            runs = shadow_runs(event, plain=models, shadow=shadow, engine=engine)
            shadow_result = shadow_summary(
                runs, challenger_version=challenger.version, predict_s=challenger_predict_seconds(event, challenger)
            )
        compute_s, _ = _median_seconds(lambda: compute_only(event, models))
        floor_s, _ = _median_seconds(lambda: floor_only(event, model))
        empty_predictions(engine)
        peak_rss_mb = handler_peak_rss_mb(url, database_url, as_shard(event, "shardId-rss"), Path(tmp))
        cold = cold_starts(url, model_uri)
        baseline_s = per_record_seconds(event, model_uri)
        database = engine.dialect.name

    def rate(seconds: float) -> float:
        return round(EVENT_RECORDS / seconds, 1)

    ratios = {
        "handler_vs_per_record_baseline": round(baseline_s / handler_s, 1),
        "compute_vs_floor": round(floor_s / compute_s, 3),
        "cold_start_pyfunc_vs_ours": round(cold["pyfunc"] / cold["ours"], 2),
        "handler_with_challenger_vs_without": shadow_result["ratio"],
    }
    return {
        "records": EVENT_RECORDS,
        "event": built,
        "database": database,
        "registry": "mlflow server over the local registry, REST (as the Lambda)",
        "model": {"name": model.name, "version": model.version},
        "handler": {
            "records_per_s": rate(handler_s),
            "median_s": round(handler_s, 4),
            "runs_s": [round(t, 4) for t in handler_runs],
            "peak_rss_mb": peak_rss_mb,
        },
        "shadow": shadow_result,
        "compute": {"records_per_s": rate(compute_s), "median_s": round(compute_s, 4)},
        "floor": {"records_per_s": rate(floor_s), "median_s": round(floor_s, 4)},
        "per_record_baseline": {"records_per_s": rate(baseline_s), "scaled_from": BASELINE_RECORDS},
        "cold_start_s": {k: (round(v, 3) if isinstance(v, float) else v) for k, v in cold.items()},
        "ratios": ratios,
        "targets": {
            name: {"at_least": target, "value": ratios[name], "met": ratios[name] >= target}
            for name, target in TARGETS.items()
        },
        "machine": {"cpus": os.cpu_count(), "load_average_1m": round(os.getloadavg()[0], 2)},
    }
