"""End to end on the embedded local stack: latency from Kinesis arrival to committed prediction, a file
drop scored in full, and the highest rate the stack sustains, with the emulator's own cost measured apart.

One ``LocalStack`` (emulator, local Lambda service, no Prefect) with a Postgres database of its own
(created and dropped here; SQLite when no server answers) and the registry's serving model. Every
invocation is observed through ``LocalStack(wrap_handler=...)`` (see ``e2e_observe``): a scorer
invocation returns after its transaction has committed, so its return time is the commit time of every
prediction in it. ``predictions.scored_at`` is not: the handler takes it before decoding, scoring and
writing, so ``scored_at - arrival_time`` under-states the latency by the handler's own time (reported
beside it). Load comes from a child process running the record simulator's ``stream_rows`` with the
producer's ``KinesisWriter``, so the load generator does not share the stack's interpreter.

- streaming: ``E2E_BENCH_RATE`` records/s (2,000) for ``E2E_BENCH_STREAM_SECONDS`` (60); per record,
  commit time minus ``ApproximateArrivalTimestamp``: p50, p95, p99, max, split into the wait in the event
  source mapping (polling, batching window) and the handler; the rate achieved
- file_drop: a 10,000-row CSV uploaded to the input prefix; seconds from the upload to the last commit
- sustained: the rate doubled from 2,000 in steps of ``E2E_BENCH_STEP_SECONDS`` (20) until a step fails,
  one step halfway between the last rate held and the first failed, then the highest rate put in a step
  that kept up (rounded down) held for ``E2E_BENCH_CONFIRM_SECONDS`` (60); steps are shorter than 60 s
  to stay within the time budget. A step fails when the consumer falls behind (Lambda's IteratorAge,
  invocation start minus the arrival of the batch's last record, grows by more than
  ``GROWTH_TOLERANCE_SECONDS`` by its least-squares slope, or the backlog left when the load stops
  takes more than ``DRAIN_TOLERANCE_SECONDS`` to clear), or when less than ``MIN_ACHIEVED_SHARE`` of the
  target is put (each PutRecords call is timed, to tell a slow stream from a busy generator)
- handler time: each scorer thread's stack is sampled while it is in the handler (``HandlerSampler``):
  the share of its wall time in the database driver, predict, validation and our own code
- emulator: the same load with the scorer replaced by a handler that only counts (``deliver_only``):
  what the emulator and the Lambda service cost on their own, so the pipeline's share is the difference
- cpu: CPU seconds per second of the stack process (emulator, Lambda service, handlers: one interpreter),
  of the database backends serving the run, and of the load generator

``E2E_BENCH_QUICK=1`` shortens every phase (for a smoke run).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout
from dataclasses import asdict, dataclass
from datetime import UTC
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Engine, select, text

from churn_common.database import get_engine, predictions
from churn_common.settings import Settings, environment_overrides, get_settings
from infra.local.lambda_service import kinesis_poller
from infra.local.resources import STREAM_SHARDS, event_source_mappings
from infra.local.stack import LocalStack
from tests.benchmarks.e2e_observe import (
    CpuMeter,
    HandlerSampler,
    Invocation,
    PerRecord,
    Recorder,
    invocation_cost,
    iterator_age_growth,
    kinesis_record_key,
    percentiles,
    rounded,
)
from tests.local_servers import free_port

QUICK = os.environ.get("E2E_BENCH_QUICK") == "1"
RATE = int(os.environ.get("E2E_BENCH_RATE", "2000"))
STREAM_SECONDS = float(os.environ.get("E2E_BENCH_STREAM_SECONDS", "15" if QUICK else "60"))
STEP_SECONDS = float(os.environ.get("E2E_BENCH_STEP_SECONDS", "8" if QUICK else "20"))
CONFIRM_SECONDS = float(os.environ.get("E2E_BENCH_CONFIRM_SECONDS", "10" if QUICK else "60"))
EMULATOR_SECONDS = 8.0 if QUICK else 20.0
RAMP_RATES = (2_000, 4_000, 8_000, 16_000, 32_000, 64_000)
STEP_DOWN = 0.75
CONFIRM_ROUNDING = 1_000
DROP_ROWS = 10_000
WARM_UP_RATE, WARM_UP_SECONDS = 500, 2.0
GROWTH_TOLERANCE_SECONDS = 1.0
DRAIN_TOLERANCE_SECONDS = 3.0  # batching window + poll interval + a handler call, with room to spare
SETTLE_SECONDS = 3.0  # the first seconds of a step, before the first batches have gone through, are not judged
MIN_ACHIEVED_SHARE = 0.95
DRAIN_TIMEOUT_SECONDS = 120.0
POLL_SECONDS = 0.25
SOURCE_ROWS = 5_000
TARGETS = {"p99_seconds_at_most": 2.0, "file_drop_seconds_at_most": 10.0}
POSTGRES_ADMIN_URL = os.environ.get("TEST_POSTGRES_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REPO_ROOT = Path(__file__).resolve().parents[2]
CHILD_MODULE = "tests.benchmarks.e2e_benchmark"


def say(message: str) -> None:
    print(f"  e2e: {message}", file=sys.stderr, flush=True)


# --- set-up ------------------------------------------------------------------------------------------------


@contextmanager
def database() -> Iterator[str]:
    """A Postgres database of its own, dropped afterwards; a SQLite file when no server answers."""
    from tests.benchmarks.monitor_benchmark import postgres_database

    with postgres_database() as url, tempfile.TemporaryDirectory(prefix="e2e-bench-db-") as folder:
        yield url or f"sqlite:///{folder}/e2e.db"


def _absolute(uri: str) -> str:
    if uri.startswith("sqlite:///"):
        return f"sqlite:///{Path(uri.removeprefix('sqlite:///')).resolve()}"
    return uri


def stack_configuration(database_url: str) -> dict[str, Any]:
    mapping = event_source_mappings()["stream_scorer"]
    return {
        "shards": STREAM_SHARDS,
        "batch_size": mapping["batch_size"],
        "maximum_batching_window_s": mapping["maximum_batching_window_in_seconds"],
        "poll_interval_when_idle_s": kinesis_poller.KINESIS_IDLE_SLEEP_SECONDS,
        "database": database_url.split(":", 1)[0].split("+", 1)[0],
        "cpus": os.cpu_count(),
    }


# --- load ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Load:
    """What the load generator sent (from its own summary)."""

    source_id: str
    rows: int
    seconds: float
    achieved_rate: float
    cpu_per_s: float
    bytes_per_record: float
    kinesis_records: int
    put_records_ms: dict[str, float]


class CallTimer:
    """Times one API operation of a boto3 client through botocore's own event hooks (any thread)."""

    def __init__(self, kinesis: Any, operation: str) -> None:
        self.seconds: list[float] = []
        self._started = threading.local()
        kinesis.meta.events.register(f"before-call.kinesis.{operation}", self._before)
        kinesis.meta.events.register(f"after-call.kinesis.{operation}", self._after)

    def _before(self, **_: Any) -> None:
        self._started.at = time.perf_counter()

    def _after(self, **_: Any) -> None:
        self.seconds.append(time.perf_counter() - self._started.at)

    def summary_ms(self) -> dict[str, float]:
        return {"calls": len(self.seconds), **rounded(percentiles(np.array(self.seconds) * 1000), 1)}


def produce(*, rate: float, seconds: float, run_name: str) -> Load:
    command = [sys.executable, "-m", CHILD_MODULE, "produce", "--rate", str(rate), "--seconds", str(seconds)]
    done = subprocess.run(
        [*command, "--run-name", run_name],
        cwd=REPO_ROOT,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        check=False,
        timeout=seconds + 120,
    )
    if done.returncode != 0:
        raise RuntimeError(f"load generator failed:\n{done.stderr[-3000:]}")
    return Load(**json.loads(done.stdout.strip().splitlines()[-1]))


def produce_in_child(*, rate: float, seconds: float, run_name: str) -> None:
    """Child process: the simulator's ``stream_rows`` at ``rate`` on rows built beforehand (real data when
    ``CHURN_DATA_DIR`` is set), so that the generator's own cost per record stays small."""
    from churn_common.aws import client
    from infra.local.simulate import csv_rows, default_drop_files, generated_rows, stream_rows
    from producer.kinesis_writer import KinesisWriter

    settings = get_settings()
    source = csv_rows(default_drop_files(settings.churn_data_dir)) if settings.churn_data_dir else None
    rows = list(itertools.islice(source or generated_rows(seed=uuid.uuid4().int % 10**6), SOURCE_ROWS))
    kinesis = client("kinesis")
    timer = CallTimer(kinesis, "PutRecords")
    writer = KinesisWriter(stream_name=settings.stream_name, kinesis=kinesis)
    writer.shard_map  # noqa: B018 - listing the shards is set-up, not sending
    cpu = time.process_time()
    summary = stream_rows(itertools.cycle(rows), writer=writer, run_name=run_name, rate=rate, duration=seconds)
    cpu = time.process_time() - cpu
    load = Load(
        source_id=summary.source_id,
        rows=summary.rows,
        seconds=round(summary.seconds, 3),
        achieved_rate=round(summary.achieved_rate, 1),
        cpu_per_s=round(cpu / summary.seconds, 3),
        bytes_per_record=round(summary.writes.bytes_per_user_record, 1),
        kinesis_records=summary.writes.kinesis_records,
        put_records_ms=timer.summary_ms(),
    )
    print(json.dumps(asdict(load)))


# --- the database ----------------------------------------------------------------------------------------


def committed_per_kinesis_record(engine: Engine, source_id: str) -> tuple[dict[str, int], int]:
    """User records committed per Kinesis record, and rows whose event id occurs more than once (none)."""
    with engine.connect() as connection:
        event_ids = connection.execute(
            select(predictions.c.event_id).where(predictions.c.source_id == source_id)
        ).scalars()
        ids = list(event_ids)
    return dict(Counter(map(kinesis_record_key, ids))), len(ids) - len(set(ids))


def scored_at_minus_arrival(engine: Engine, source_id: str) -> np.ndarray:
    with engine.connect() as connection:
        rows = connection.execute(
            select(predictions.c.arrival_time, predictions.c.scored_at).where(predictions.c.source_id == source_id)
        ).all()
    return np.array([_epoch(scored) - _epoch(arrival) for arrival, scored in rows])


def _epoch(moment: Any) -> float:
    return float((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp())


def stored_bytes_per_row(engine: Engine) -> dict[str, float] | None:
    """What a prediction takes in Postgres, table and indexes (for sizing storage); None on SQLite."""
    if engine.dialect.name != "postgresql":
        return None
    with engine.connect() as connection:
        total, indexes, rows = connection.execute(
            text(
                "SELECT pg_total_relation_size('predictions'), pg_indexes_size('predictions'), "
                "(SELECT count(*) FROM predictions)"
            )
        ).one()
    return {
        "rows": int(rows),
        "bytes_per_row": round(total / rows, 1),
        "of_which_indexes": round(indexes / rows, 1),
    }


def backend_pids(engine: Engine) -> Any:
    """The database server's processes serving this database (none for SQLite); the benchmark's own
    connection is one of them (it only counts rows once per phase)."""
    if engine.dialect.name != "postgresql":
        return list

    def pids() -> list[int]:
        with engine.connect() as connection:
            return list(
                connection.execute(
                    text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
                ).scalars()
            )

    return pids


# --- phases ----------------------------------------------------------------------------------------------------


@dataclass
class Bench:
    recorder: Recorder
    engine: Engine
    settings: Settings
    rows_written: int = 0

    def wait_until(self, done: Any, *, what: str, timeout: float = DRAIN_TIMEOUT_SECONDS) -> float:
        """Seconds until ``done()``; raises after ``timeout``."""
        started = time.monotonic()
        while not done():
            if time.monotonic() - started > timeout:
                raise TimeoutError(f"{what}: not done after {timeout:.0f} s")
            time.sleep(POLL_SECONDS)
        return time.monotonic() - started

    def stream(
        self, *, rate: float, seconds: float, deliver_only: bool = False, detail: bool = False
    ) -> dict[str, Any]:
        """Load at ``rate`` for ``seconds``, wait until every record is committed (or delivered), and describe it."""
        self.recorder.reset(deliver_only=deliver_only)
        meter = CpuMeter(backend_pids(self.engine))
        sampler = HandlerSampler()
        rows_before = self.rows_written
        meter.start()
        sampler.start()
        load = produce(rate=rate, seconds=seconds, run_name=f"e2e-{int(rate)}-{uuid.uuid4().hex[:8]}")
        drained = self.wait_until(
            lambda: self.recorder.delivered_kinesis_records() >= load.kinesis_records, what="delivery"
        )
        cpu = meter.stop()
        handler_samples = sampler.stop()
        invocations = self.recorder.scorer_invocations()
        handler_cpu = sum(i.cpu_seconds for i in invocations)
        if deliver_only:
            counts = self.recorder.delivered_user_records()
            duplicates = 0
        else:
            counts, duplicates = committed_per_kinesis_record(self.engine, load.source_id)
            self.rows_written += sum(counts.values())
            if sum(counts.values()) != load.rows or duplicates:
                raise AssertionError(f"{load.rows} records put, {sum(counts.values())} scored, {duplicates} twice")
        per_record = PerRecord.from_seen(self.recorder, counts)
        growth = iterator_age_growth(invocations, skip_seconds=SETTLE_SECONDS)
        achieved_share = load.achieved_rate / rate
        kept_up = growth is not None and growth["growth_s"] <= GROWTH_TOLERANCE_SECONDS
        kept_up = kept_up and drained <= DRAIN_TOLERANCE_SECONDS
        paired = self._records_per_invocation(counts)
        result: dict[str, Any] = {
            "target_rate": rate,
            "achieved_rate": load.achieved_rate,
            "seconds": load.seconds,
            "records": load.rows,
            "committed": int(sum(counts.values())) if not deliver_only else None,
            "duplicates": duplicates if not deliver_only else None,
            "latency_s": rounded(percentiles(per_record.latency)),
            "waiting_in_event_source_s": rounded(percentiles(per_record.waiting)),
            "handler_s": rounded(percentiles(per_record.handling)),
            "invocations": invocation_cost([i for i, _ in paired], [n for _, n in paired]),
            "iterator_age": growth,
            "drain_s_after_load": round(drained, 2),
            "kept_up": kept_up,
            "ingested_share": round(achieved_share, 3),
            "holds": kept_up and achieved_share >= MIN_ACHIEVED_SHARE,
            "put_records_ms": load.put_records_ms,
            "cpu": {
                **cpu,
                "scorer_thread_cpu_per_s": round(handler_cpu / cpu["wall_s"], 3),
                "load_generator_cpu_per_s": load.cpu_per_s,
            },
            "bytes_per_record": load.bytes_per_record,
            "handler_wall_time_by_innermost_frame": handler_samples,
            "table_rows_at_start": rows_before,
        }
        if detail and not deliver_only:
            gap = scored_at_minus_arrival(self.engine, load.source_id)
            result["scored_at_minus_arrival_s"] = rounded(percentiles(gap))
            result["exactly_once"] = result["committed"] == load.rows and duplicates == 0
        say(
            f"{'deliver-only' if deliver_only else 'scoring'} {rate:,.0f}/s x {seconds:.0f} s: "
            f"achieved {load.achieved_rate:,.0f}/s, p99 {result['latency_s'].get('p99')} s, "
            f"age growth {growth and growth['growth_s']} s, holds={result['holds']}"
        )
        return result

    def _records_per_invocation(self, counts: dict[str, int]) -> list[tuple[Invocation, int]]:
        per_invocation: Counter[int] = Counter()
        for key, n in counts.items():
            seen = self.recorder.records.get(key)
            if seen is not None:
                per_invocation[seen.invocation] += n
        everything = self.recorder.invocations
        return [(everything[index], n) for index, n in per_invocation.items()]

    def file_drop(self, rows: int) -> dict[str, Any]:
        """Upload a CSV of ``rows`` rows to the input prefix; seconds until its last prediction is committed."""
        from churn_common.aws import client
        from infra.local.driver import UploadedVersion, manifest_of

        self.recorder.reset(deliver_only=False)
        body = drop_csv(rows)
        key = f"{self.settings.input_prefix}e2e-bench-{uuid.uuid4().hex[:8]}.csv"
        s3 = client("s3")
        started = time.time()
        response = s3.put_object(Bucket=self.settings.bucket, Key=key, Body=body)
        uploaded = time.time()
        version = UploadedVersion(self.settings.bucket, key, response["ETag"].strip('"'), response.get("VersionId"))
        manifest = None

        def manifest_written() -> bool:
            nonlocal manifest
            manifest = manifest_of(version, settings=self.settings)
            return manifest is not None

        self.wait_until(manifest_written, what="manifest", timeout=60)
        assert manifest is not None
        expected = manifest.records_sent
        aggregates = manifest.kinesis_records
        self.wait_until(lambda: self.recorder.delivered_kinesis_records() >= aggregates, what="file", timeout=120)
        counts, duplicates = committed_per_kinesis_record(self.engine, manifest.source_id)
        self.rows_written += sum(counts.values())
        per_record = PerRecord.from_seen(self.recorder, counts)
        producer_runs = self.recorder.of("producer")
        last_commit = float(per_record.done.max())
        seconds = last_commit - started
        say(f"file drop of {rows:,} rows: last prediction committed {seconds:.2f} s after the upload began")
        return {
            "rows": manifest.rows_read,
            "records_sent": expected,
            "rows_rejected": manifest.rows_rejected,
            "committed": int(sum(counts.values())),
            "duplicates": duplicates,
            "kinesis_records": manifest.kinesis_records,
            "seconds_upload_to_last_commit": round(seconds, 3),
            "breakdown_s": {
                "upload": round(uploaded - started, 3),
                "producer_invoked": round(min(i.started for i in producer_runs) - started, 3),
                "producer_done": round(max(i.finished for i in producer_runs) - started, 3),
                "first_arrival": round(float(per_record.arrival.min()) - started, 3),
                "last_arrival": round(float(per_record.arrival.max()) - started, 3),
                "first_commit": round(float(per_record.done.min()) - started, 3),
                "last_commit": round(seconds, 3),
            },
            "scorer_invocations": len({seen.invocation for seen in self.recorder.records.values()}),
        }


def drop_csv(rows: int) -> bytes:
    """A drop in the published format: rows of the real data files when configured, else synthetic."""
    import pandas as pd

    from data.churn_csv import read_churn_csv, write_churn_csv
    from data.generator import generate
    from infra.local.simulate import default_drop_files

    data_dir = get_settings().churn_data_dir
    if data_dir is None:
        frame = generate(n_rows=rows, seed=11)
    else:
        pool = pd.concat([read_churn_csv(p) for p in default_drop_files(data_dir)], ignore_index=True)
        frame = pool.sample(n=rows, replace=True, random_state=11).reset_index(drop=True)
    with tempfile.TemporaryDirectory(prefix="e2e-drop-") as folder:
        path = Path(folder) / "drop.csv"
        write_churn_csv(frame, path, original_headers=True)
        return path.read_bytes()


def sustained(bench: Bench) -> dict[str, Any]:
    """Double the rate until a step fails, try halfway, then hold the best rate reached for longer.

    A step fails in one of two ways: the consumer falls behind (the iterator age grows, or the backlog
    left when the load stops takes longer than a batch to clear), or the stream does not take the load
    (the generator, not short of CPU, puts less than ``MIN_ACHIEVED_SHARE`` of the target because each
    PutRecords call waits longer). The rate confirmed is the highest rate actually put in a step that
    kept up, rounded down."""
    steps = []
    held: float | None = None
    failed: float | None = None
    for rate in RAMP_RATES:
        step = bench.stream(rate=rate, seconds=STEP_SECONDS)
        steps.append(step)
        if not step["holds"]:
            failed = rate
            break
        held = rate
    if held is not None and failed is not None:
        middle = round((held + failed) / 2, -2)
        step = bench.stream(rate=middle, seconds=STEP_SECONDS)
        steps.append(step)
        failed = failed if step["holds"] else middle
    reached = [s["achieved_rate"] for s in steps if s["kept_up"]]
    candidate: float | None = float(max(reached) // CONFIRM_ROUNDING * CONFIRM_ROUNDING) if reached else None
    confirmed = None
    while candidate is not None and confirmed is None:
        confirm = bench.stream(rate=candidate, seconds=CONFIRM_SECONDS)
        steps.append(confirm)
        if confirm["holds"]:
            confirmed = confirm
        elif candidate * STEP_DOWN >= RAMP_RATES[0]:
            candidate = float(candidate * STEP_DOWN // CONFIRM_ROUNDING * CONFIRM_ROUNDING)
        else:
            candidate = None
    first_failure = next((s for s in steps if not s["holds"]), None)
    return {
        "max_rate": confirmed["target_rate"] if confirmed else None,
        "max_rate_achieved": confirmed["achieved_rate"] if confirmed else None,
        "held_for_s": confirmed["seconds"] if confirmed else None,
        "first_failed_rate": failed,
        "first_failure": None if first_failure is None else failure_kind(first_failure),
        "at_max": confirmed,
        "steps": [{k: s[k] for k in STEP_FIELDS} for s in steps],
    }


def failure_kind(step: dict[str, Any]) -> str:
    if not step["kept_up"]:
        return "consumer fell behind: the iterator age grew or the backlog outlasted a batch"
    return (
        f"ingestion: {step['ingested_share']:.0%} of the target rate was put "
        f"(PutRecords p99 {step['put_records_ms'].get('p99')} ms, load generator CPU "
        f"{step['cpu']['load_generator_cpu_per_s']} s/s)"
    )


STEP_FIELDS = (
    "target_rate",
    "achieved_rate",
    "seconds",
    "holds",
    "kept_up",
    "ingested_share",
    "put_records_ms",
    "iterator_age",
    "latency_s",
    "waiting_in_event_source_s",
    "handler_s",
    "invocations",
    "drain_s_after_load",
    "cpu",
    "handler_wall_time_by_innermost_frame",
    "table_rows_at_start",
)


def limit_verdict(at_max: dict[str, Any] | None, emulator: dict[str, Any] | None) -> dict[str, Any]:
    """Where the CPU went at the sustained maximum: the stack process with the scorer and without it (the
    emulator and the Lambda service alone, same load), the database and the load generator."""
    if at_max is None:
        return {"verdict": "no rate was sustained"}
    cpu = at_max["cpu"]
    stack = cpu["stack_process_cpu_per_s"]
    alone = emulator["cpu"]["stack_process_cpu_per_s"] if emulator else None
    database = cpu["database_cpu_per_s"] or 0.0
    generator = cpu["load_generator_cpu_per_s"]
    cores = os.cpu_count() or 1
    return {
        "stack_process_cpu_per_s": stack,
        "emulator_and_lambda_service_alone_cpu_per_s": alone,
        "scorer_cpu_per_s": None if alone is None else round(stack - alone, 3),
        "scorer_share_of_stack_process": None if alone is None or not stack else round((stack - alone) / stack, 3),
        "database_cpu_per_s": cpu["database_cpu_per_s"],
        "load_generator_cpu_per_s": generator,
        "machine_cpu_per_s": round(stack + database + generator, 2),
        "cores": cores,
    }


def run() -> dict[str, Any]:
    from training.train import ensure_model

    ensure_model()
    settings = get_settings()
    started = time.monotonic()
    load_at_start = round(os.getloadavg()[0], 2)
    state = settings.local_state_dir / "bench"
    state.mkdir(parents=True, exist_ok=True)
    with (
        database() as database_url,
        tempfile.TemporaryDirectory(prefix="e2e-bench-state-") as local_state,
        environment_overrides(
            {
                "LOCAL_STATE_DIR": local_state,
                "LOCAL_AWS_PORT": str(free_port()),
                "DATABASE_URL": database_url,
                "MLFLOW_TRACKING_URI": _absolute(settings.resolved_mlflow_uri),
            }
        ),
        (state / "e2e-stack.log").open("w") as log,
        redirect_stdout(log),
    ):
        recorder = Recorder()
        with LocalStack(with_prefect=False, wrap_handler=recorder.wrap):
            bench = Bench(recorder=recorder, engine=get_engine(database_url), settings=get_settings())
            bench.stream(rate=WARM_UP_RATE, seconds=WARM_UP_SECONDS)
            streaming = bench.stream(rate=RATE, seconds=STREAM_SECONDS, detail=True)
            emulator_at_rate = bench.stream(rate=RATE, seconds=EMULATOR_SECONDS, deliver_only=True)
            drop = bench.file_drop(DROP_ROWS)
            capacity = sustained(bench)
            top = capacity["max_rate"]
            emulator_at_max = (
                bench.stream(rate=top, seconds=EMULATOR_SECONDS, deliver_only=True) if top is not None else None
            )
            storage = stored_bytes_per_row(bench.engine)
        configuration = stack_configuration(database_url)
    capacity["limit"] = limit_verdict(capacity["at_max"], emulator_at_max)
    capacity["emulator_only_at_max"] = emulator_at_max
    p99 = streaming["latency_s"]["p99"]
    return {
        "stack": configuration,
        "streaming": streaming,
        "emulator_only_at_streaming_rate": emulator_at_rate,
        "file_drop": drop,
        "sustained": capacity,
        "database_storage": storage,
        "targets": {
            **TARGETS,
            "met": {
                "p99": p99 <= TARGETS["p99_seconds_at_most"],
                "file_drop": drop["seconds_upload_to_last_commit"] <= TARGETS["file_drop_seconds_at_most"],
            },
        },
        "quick": QUICK,
        "total_seconds": round(time.monotonic() - started, 1),
        "machine": {
            "cpus": os.cpu_count(),
            "load_average_1m_at_start_and_end": [load_at_start, round(os.getloadavg()[0], 2)],
        },
    }


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description="load generator of the end-to-end benchmark (used by run())")
    parser.add_argument("command", choices=("produce",))
    parser.add_argument("--rate", type=float, required=True)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--run-name", required=True)
    args = parser.parse_args(argv)
    produce_in_child(rate=args.rate, seconds=args.seconds, run_name=args.run_name)


if __name__ == "__main__":
    main(sys.argv[1:])
