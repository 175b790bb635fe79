"""Producer throughput and memory against an emulator of its own, all variants in one run.

- aggregated: the producer's KinesisWriter with its defaults (per-shard KPL aggregates, at most one
  aggregate per shard per call, one call in flight) on ``RECORDS`` encoded customer records; the same at
  the KPL's default aggregate size (50 KiB) is reported next to it
- unaggregated: the same payloads, one Kinesis record each, PutRecords with 500 per call
- per_record: one PutRecord per record, timed on a ``PER_RECORD_SAMPLE`` sample
- file: the real handler on generated CSV drops of growing size, each in a fresh process whose peak RSS
  (``ru_maxrss``) is read at the end, so the memory of streaming a file is measured, not assumed

Every variant writes to a fresh stream of its own. Payloads are encoded once beforehand (encoding is the
same for all three and is reported on its own), so the variants differ only in how records travel.
Next to wall-clock rates, the CPU seconds of this process (the producer) and of the emulator are
reported per variant: their sum does not depend on what else the machine runs, which rates do.

The emulator (moto's ThreadedMotoServer on a free port) runs in a child process: its work is the AWS
side and must not compete with the producer for this process's interpreter lock. One emulator cost is
removed there: moto 5.2 finds a shard's last sequence number by copying all of its keys, so each put
costs time proportional to what the shard already holds (100,000 unaggregated records would take
minutes and measure that, not the producer). The benchmark makes that lookup constant-time, as in Kinesis.

Sizes: ``PRODUCER_BENCH_RECORDS`` (default 100,000) and ``PRODUCER_BENCH_FILE_MB`` (comma-separated file
sizes in MB, default ``25,100``; add ``1024`` for a 1 GB drop, which takes about ten minutes here).
"""

from __future__ import annotations

import json
import logging
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from churn_common.aws import client, forget_clients
from churn_common.settings import get_settings
from churn_common.wire import encode
from tests.local_servers import free_port

REPO_ROOT = Path(__file__).resolve().parent.parent.parent

RECORDS = int(os.environ.get("PRODUCER_BENCH_RECORDS", "100000"))
FILE_SIZES_MB = tuple(int(s) for s in os.environ.get("PRODUCER_BENCH_FILE_MB", "25,100").split(","))
PER_RECORD_SAMPLE = 2_000
KPL_DEFAULT_AGGREGATE_BYTES = 50 * 1024  # the KPL's AggregationMaxSize default, for comparison
WARM_UP_RECORDS = 2_000
PUT_RECORDS_BATCH = 500
STREAM_SHARDS = 2
BAD_ROW_EVERY = 100_000
BAD_ROW = "8,0,38,0,4370,71,5,17,7,1,1,30,197.64,0"  # age group 7
MB = 1024 * 1024
SHARD_BYTES_PER_S = 1024 * 1024
SHARD_RECORDS_PER_S = 1_000
TARGET_RATIO = 10
TARGET_BYTES_PER_RECORD = 200
TARGET_PEAK_RSS_MB = 300
EMULATOR_STOP_SECONDS = 10
EMULATOR_READY = "emulator ready"
CHILD_MODULE = "tests.benchmarks.producer_benchmark"
FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}

Payloads = list[tuple[str, bytes]]


def _constant_time_sequence_numbers() -> None:
    from moto.kinesis.models import Shard

    Shard.get_max_sequence_number = lambda self: next(reversed(self.records), 0)  # type: ignore[method-assign]


def serve_emulator(port: str) -> None:
    """Child process: the emulator, until the parent closes this process's stdin."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    _constant_time_sequence_numbers()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=int(port), verbose=False)
    server.start()
    print(EMULATOR_READY, flush=True)
    sys.stdin.read()
    server.stop()


def _reset_clients() -> None:
    get_settings.cache_clear()
    forget_clients()


def _child(*args: str) -> list[str]:
    return [sys.executable, "-m", CHILD_MODULE, *args]


@dataclass(frozen=True, slots=True)
class Emulator:
    endpoint_url: str
    pid: int

    def cpu_seconds(self) -> float | None:
        """User + system CPU time the emulator process has used so far (Linux /proc; None elsewhere)."""
        stat = Path(f"/proc/{self.pid}/stat")
        if not stat.exists():
            return None
        fields = stat.read_text().rsplit(")", 1)[1].split()  # fields from the third on: utime, stime at 11, 12
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _measured(emulator: Emulator, work: Callable[[], Any]) -> tuple[Any, dict[str, Any]]:
    """Runs ``work``; its result, plus wall seconds and the CPU seconds of both processes meanwhile."""
    emulator_before, producer_before, started = emulator.cpu_seconds(), time.process_time(), time.perf_counter()
    result = work()
    seconds = time.perf_counter() - started
    producer = time.process_time() - producer_before
    emulator_after = emulator.cpu_seconds()
    server = None if emulator_before is None or emulator_after is None else emulator_after - emulator_before
    total = None if server is None else producer + server
    cpu = {"producer": round(producer, 3), "emulator": _rounded(server), "total": _rounded(total)}
    return result, {"seconds": seconds, "cpu_seconds": cpu}


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


@contextmanager
def emulator() -> Iterator[Emulator]:
    """A fresh emulator in a child process; this process's AWS settings point at it until the end."""
    port = free_port()
    process = subprocess.Popen(
        _child("emulator", str(port)), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO_ROOT
    )
    saved = {k: os.environ.get(k) for k in (*FAKE_AWS_ENV, "AWS_ENDPOINT_URL")}
    try:
        assert process.stdout is not None
        if process.stdout.readline().strip() != EMULATOR_READY:
            raise RuntimeError(f"the emulator did not start (exit code {process.poll()})")
        os.environ.update({**FAKE_AWS_ENV, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}"})
        _reset_clients()
        yield Emulator(endpoint_url=os.environ["AWS_ENDPOINT_URL"], pid=process.pid)
    finally:
        assert process.stdin is not None
        process.stdin.close()
        try:
            process.wait(EMULATOR_STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.terminate()
            process.wait(EMULATOR_STOP_SECONDS)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        _reset_clients()


def _frame(rows: int) -> Any:
    """Rows of the real dataset (data files, sampled with replacement) when CHURN_DATA_DIR is set, else synthetic."""
    import pandas as pd

    from data.dataset import read_churn_csv
    from data.synthetic import generate
    from infra.local.simulate import default_drop_files

    data_dir = get_settings().churn_data_dir
    if data_dir is None:
        return generate(n_rows=rows, seed=7)
    frame = pd.concat([read_churn_csv(p) for p in default_drop_files(data_dir)], ignore_index=True)
    return frame.sample(n=rows, replace=True, random_state=7).reset_index(drop=True)


def _payloads(frame: Any) -> tuple[Payloads, float]:
    from tests.factories import records_from_frame

    records = records_from_frame(frame, source="bench://producer", event_time=datetime.now(tz=UTC))
    started = time.perf_counter()
    payloads = [(r.record_id, encode(r)) for r in records]
    return payloads, time.perf_counter() - started


def _stream(name: str) -> str:
    kinesis = client("kinesis")
    kinesis.create_stream(StreamName=name, ShardCount=STREAM_SHARDS)
    kinesis.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 0.1})
    return name


def _stored_user_records(stream: str) -> int:
    from aws_kinesis_agg.deaggregator import iter_deaggregate_records

    kinesis = client("kinesis")
    total = 0
    for shard in kinesis.list_shards(StreamName=stream)["Shards"]:
        iterator = kinesis.get_shard_iterator(
            StreamName=stream, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while iterator:
            response = kinesis.get_records(ShardIterator=iterator, Limit=10_000)
            if not response["Records"]:
                break
            total += sum(1 for _ in iter_deaggregate_records(response["Records"], data_format="Boto3"))
            iterator = response.get("NextShardIterator")
    return total


def _warm_up(payloads: Payloads) -> None:
    from producer.kinesis_writer import KinesisWriter

    warm_up = KinesisWriter(stream_name=_stream("bench-warm-up"), kinesis=client("kinesis"))
    for key, data in payloads[:WARM_UP_RECORDS]:
        warm_up.add(key, data)
    warm_up.flush()


def _aggregated(payloads: Payloads, emulator: Emulator, *, aggregate_bytes: int | None = None) -> dict[str, Any]:
    from producer.kinesis_writer import DEFAULT_AGGREGATE_BYTES, KinesisWriter, WriteStats

    aggregate_bytes = aggregate_bytes or DEFAULT_AGGREGATE_BYTES
    stream = _stream(f"bench-aggregated-{aggregate_bytes}")
    writer = KinesisWriter(stream_name=stream, kinesis=client("kinesis"), max_aggregate_bytes=aggregate_bytes)
    writer.shard_map  # noqa: B018 - listing the shards is set-up, not sending

    def send() -> WriteStats:
        for key, data in payloads:
            writer.add(key, data)
        return writer.flush()

    stats, measured = _measured(emulator, send)
    seconds = measured["seconds"]
    return {
        "records_per_s": round(len(payloads) / seconds),
        "seconds": round(seconds, 3),
        "cpu_seconds": measured["cpu_seconds"],
        "aggregate_bytes": aggregate_bytes,
        "kinesis_records": stats.kinesis_records,
        "put_calls": stats.put_calls,
        "bytes_per_record": round(stats.bytes_per_user_record, 1),
        "user_records_per_kinesis_record": round(stats.user_records / stats.kinesis_records, 1),
        "retried_entries": stats.retried_entries,
        "read_back_records": _stored_user_records(stream),
    }


def _unaggregated(payloads: Payloads, emulator: Emulator) -> dict[str, Any]:
    kinesis = client("kinesis")
    stream = _stream("bench-unaggregated")

    def send() -> tuple[int, int, int]:
        calls = failed = size = 0
        for start in range(0, len(payloads), PUT_RECORDS_BATCH):
            batch = [{"Data": data, "PartitionKey": key} for key, data in payloads[start : start + PUT_RECORDS_BATCH]]
            failed += kinesis.put_records(StreamName=stream, Records=batch)["FailedRecordCount"]
            calls += 1
            size += sum(len(e["Data"]) + len(e["PartitionKey"]) for e in batch)
        return calls, failed, size

    (calls, failed, size), measured = _measured(emulator, send)
    seconds = measured["seconds"]
    return {
        "records_per_s": round(len(payloads) / seconds),
        "seconds": round(seconds, 3),
        "cpu_seconds": measured["cpu_seconds"],
        "put_calls": calls,
        "failed_records": failed,
        "bytes_per_record": round(size / len(payloads), 1),
    }


def _per_record(payloads: Payloads) -> dict[str, Any]:
    kinesis = client("kinesis")
    stream = _stream("bench-per-record")
    sample = payloads[:PER_RECORD_SAMPLE]
    started = time.perf_counter()
    for key, data in sample:
        kinesis.put_record(StreamName=stream, Data=data, PartitionKey=key)
    seconds = time.perf_counter() - started
    return {"records_per_s": round(len(sample) / seconds, 1), "seconds": round(seconds, 3), "sample": len(sample)}


def _write_big_csv(path: Path, *, size_mb: int, frame: Any) -> tuple[int, int]:
    """A drop of about ``size_mb`` MB in the published format (original headers), with a bad row every
    ``BAD_ROW_EVERY`` rows; returns (rows, bad rows)."""
    from data.churn_csv import write_churn_csv

    seed = path.with_suffix(".seed.csv")
    write_churn_csv(frame, seed, original_headers=True)
    header, body = seed.read_bytes().split(b"\n", 1)
    seed.unlink()
    body_rows = body.count(b"\n")
    rows = bad = 0
    with path.open("wb") as out:
        out.write(header + b"\n")
        while out.tell() < size_mb * MB:
            out.write(body)
            rows += body_rows
            if rows // BAD_ROW_EVERY > bad:
                out.write(BAD_ROW.encode() + b"\n")
                rows += 1
                bad += 1
    return rows, bad


def _drop_event(name: str, resources: Any) -> dict[str, Any]:
    """The SQS event the Lambda service would deliver for the drop, from the notification S3 sent."""
    sqs = client("sqs")
    for _ in range(30):
        messages = sqs.receive_message(
            QueueUrl=resources.file_drops_queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
        ).get("Messages", [])
        ours = [m for m in messages if name in m["Body"]]
        if ours:
            break
    else:
        raise TimeoutError(f"no notification for {name}")
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": {},
                "messageAttributes": {},
                "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": resources.file_drops_queue_arn,
                "awsRegion": "us-east-1",
            }
            for m in ours
        ]
    }


def _handle_in_fresh_process(event: dict[str, Any]) -> dict[str, Any]:
    completed = subprocess.run(
        _child("handle"),
        input=json.dumps(event),
        capture_output=True,
        text=True,
        check=True,
        env=dict(os.environ),
        cwd=REPO_ROOT,
    )
    return json.loads(completed.stdout.strip().splitlines()[-1])


def _file_run(size_mb: int, frame: Any, workdir: Path) -> dict[str, Any]:
    from infra.local.resources import provision

    resources = provision()
    path = workdir / f"drop-{size_mb}mb.csv"
    rows, bad = _write_big_csv(path, size_mb=size_mb, frame=frame)
    name = f"bench-{size_mb}mb.csv"
    with path.open("rb") as body:
        client("s3").put_object(Bucket=resources.bucket, Key=f"{get_settings().input_prefix}{name}", Body=body)
    size = path.stat().st_size
    path.unlink()
    child = _handle_in_fresh_process(_drop_event(name, resources))
    manifest = child["manifest"]
    if manifest["rows_read"] != rows or manifest["rows_rejected"] != bad:
        raise AssertionError(f"the {size_mb} MB drop was not fully accounted for: {manifest}")
    return {
        "size_mb": round(size / MB, 1),
        "rows": rows,
        "records_sent": manifest["records_sent"],
        "rows_rejected": manifest["rows_rejected"],
        "peak_rss_mb": child["peak_rss_mb"],
        "rss_before_mb": child["rss_before_mb"],
        "seconds": child["seconds"],
        "rows_per_s": round(rows / child["seconds"]),
    }


def _file(frame: Any) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="producer-bench-") as tmp:
        runs = [_file_run(size_mb, frame, Path(tmp)) for size_mb in FILE_SIZES_MB]
    first, last = runs[0], runs[-1]
    span = last["size_mb"] - first["size_mb"]
    slope = (last["peak_rss_mb"] - first["peak_rss_mb"]) / span * 100 if span else 0.0
    return {
        "runs": runs,
        "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
        "rss_growth_mb_per_100mb_of_file": round(slope, 2),
        "handler_rows_per_s": last["rows_per_s"],
    }


def run() -> dict[str, Any]:
    frame = _frame(RECORDS)
    payloads, encode_seconds = _payloads(frame)
    with emulator() as local:
        _warm_up(payloads)
        aggregated = _aggregated(payloads, local)
        unaggregated = _unaggregated(payloads, local)
        kpl_default_size = _aggregated(payloads, local, aggregate_bytes=KPL_DEFAULT_AGGREGATE_BYTES)
        per_record = _per_record(payloads)
        file = _file(frame.head(10_000))
    for variant in (aggregated, kpl_default_size):
        if variant["read_back_records"] != len(payloads):
            raise AssertionError(f"{variant['read_back_records']} of {len(payloads)} aggregated records read back")
    ratio = aggregated["records_per_s"] / unaggregated["records_per_s"]
    gigabyte = next((r for r in file["runs"] if r["size_mb"] >= 1000), None)
    return {
        "records": len(payloads),
        "data": "real" if get_settings().churn_data_dir else "synthetic",
        "emulator": "moto ThreadedMotoServer in a child process, constant-time shard sequence numbers",
        "encode": {"records_per_s": round(len(payloads) / encode_seconds)},
        "aggregated": aggregated,
        "unaggregated": unaggregated,
        "aggregated_at_kpl_default_size": kpl_default_size,
        "per_record": per_record,
        "ratios": {
            "aggregated_vs_unaggregated": round(ratio, 1),
            "aggregated_vs_unaggregated_cpu": _cpu_ratio(unaggregated, aggregated),
            "aggregated_at_kpl_default_size_vs_unaggregated": round(
                kpl_default_size["records_per_s"] / unaggregated["records_per_s"], 1
            ),
            "aggregated_vs_per_record": round(aggregated["records_per_s"] / per_record["records_per_s"], 1),
        },
        "shard_capacity_records_per_s": {
            "aggregated": round(SHARD_BYTES_PER_S / aggregated["bytes_per_record"]),
            "unaggregated": min(SHARD_RECORDS_PER_S, round(SHARD_BYTES_PER_S / unaggregated["bytes_per_record"])),
        },
        "file": file,
        "file_1gb": {"peak_rss_mb": gigabyte["peak_rss_mb"] if gigabyte else None, "measured": gigabyte is not None},
        "targets": {
            "aggregated_vs_unaggregated_at_least": TARGET_RATIO,
            "bytes_per_record_at_most": TARGET_BYTES_PER_RECORD,
            "peak_rss_mb_at_most": TARGET_PEAK_RSS_MB,
            "met": {
                "ratio": ratio >= TARGET_RATIO,
                "bytes_per_record": aggregated["bytes_per_record"] <= TARGET_BYTES_PER_RECORD,
                "peak_rss": file["peak_rss_mb"] <= TARGET_PEAK_RSS_MB,
            },
        },
    }


def _cpu_ratio(slower: dict[str, Any], faster: dict[str, Any]) -> float | None:
    """How many times the CPU seconds (producer + emulator) of ``slower`` those of ``faster`` are."""
    slow, fast = slower["cpu_seconds"]["total"], faster["cpu_seconds"]["total"]
    return round(slow / fast, 1) if slow and fast else None


def _peak_rss_mb() -> float:
    """Peak resident memory of this process since it started.

    On Linux, ``ru_maxrss`` survives ``execve`` and starts from the RSS of the parent at ``fork``, so a
    child of a big process reports the parent's size; the address space's own high-water mark
    (``VmHWM``) does not carry that over.
    """
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # kilobytes on Linux


def handle_from_stdin() -> None:
    """Child process: handle the SQS event on stdin with the real handler; print peak RSS and the manifest."""
    from churn_common.wire import source_id_for
    from producer.file_processor import FileProcessor
    from producer.handler import handle
    from producer.locations import manifests_prefix
    from producer.manifest import read_manifest
    from producer.s3_events import SqsEvent, parse_notification

    event = json.loads(sys.stdin.read())
    settings = get_settings()
    processor = FileProcessor(settings=settings, s3=client("s3"), kinesis=client("kinesis"))
    client("s3").list_buckets()  # connections and credentials ready before the baseline is read
    rss_before = _peak_rss_mb()
    started = time.perf_counter()
    response = handle(event, processor=processor)
    seconds = time.perf_counter() - started
    if response["batchItemFailures"]:
        raise RuntimeError(f"the drop failed: {response}")
    (ref,) = {r.key: r for m in SqsEvent.model_validate(event).records for r in parse_notification(m.body)}.values()
    source_id = source_id_for(ref.uri, ref.etag or "")
    (key,) = [
        o["Key"]
        for o in client("s3").list_objects_v2(Bucket=settings.bucket, Prefix=manifests_prefix(settings, source_id))[
            "Contents"
        ]
    ]
    manifest = read_manifest(client("s3"), bucket=settings.bucket, key=key)
    result = {
        "peak_rss_mb": _peak_rss_mb(),
        "rss_before_mb": rss_before,
        "seconds": round(seconds, 2),
        "manifest": manifest.model_dump(mode="json"),
    }
    print(json.dumps(result))


CHILD_COMMANDS = {"emulator": serve_emulator, "handle": handle_from_stdin}

if __name__ == "__main__":
    CHILD_COMMANDS[sys.argv[1]](*sys.argv[2:])
