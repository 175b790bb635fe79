"""The record stream's label feed against the emulator over HTTP: records go out unlabelled, and the true
labels of a share of them arrive later as label files under the labels prefix, read back here with boto3 and
the csv module; once the records are scored, the monitor's label step joins those labels onto them."""

from __future__ import annotations

import csv
import io
import itertools
import re
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from batch_monitor.labels.ingest import ingest_labels
from churn_common.aws import client
from churn_common.database import get_engine, predictions
from churn_common.schema import CustomerRow
from churn_common.settings import get_settings
from churn_common.wire import LABEL_INDEX, source_id_for
from infra.local.lambda_service import CheckpointStore, KinesisMappingConfig, KinesisShardPoller, MappingStats
from infra.local.resources import StackResources, event_source_mappings
from infra.local.simulate import SAMPLES_DIR, app, csv_rows, stream_rows
from producer.kinesis_writer import KinesisWriter
from stream_scorer.handler import handle
from stream_scorer.model import ModelCache
from stream_scorer.stream_incarnation import StreamIncarnations
from tests.integration.producer.conftest import StreamRecord, read_stream

pytestmark = pytest.mark.integration

HEADER = ["record_id", "churned", "observed_at"]
EVENT_TIME_INDEX = 3
SHARE = 0.5
DELAY_SECONDS = 1.0
SEED = 41
STREAM_RATE = 300
STREAM_SECONDS = 1.5
# The truth run streams the same seeded rows for longer, so that it holds every row of the run it judges even
# when a busy machine slows one run more than the other (a run ends at its duration, however few it sent).
TRUTH_SECONDS = 4 * STREAM_SECONDS
IDLE_ROUNDS_TO_STOP = 3
MAX_ROUNDS = 200


def label_files() -> dict[str, list[dict[str, str]]]:
    """Every object under the labels prefix, parsed as CSV; the header is checked on the way."""
    settings = get_settings()
    s3 = client("s3")
    listed = s3.list_objects_v2(Bucket=settings.bucket, Prefix=settings.labels_prefix).get("Contents", [])
    files = {}
    for item in listed:
        text = s3.get_object(Bucket=settings.bucket, Key=item["Key"])["Body"].read().decode()
        header, *rows = list(csv.reader(io.StringIO(text)))
        assert header == HEADER, item["Key"]
        files[item["Key"]] = [dict(zip(HEADER, row, strict=True)) for row in rows]
    return files


def sent_at(record: StreamRecord) -> datetime:
    return datetime.fromtimestamp(record.fields[EVENT_TIME_INDEX] / 1000, tz=UTC)


def stream_command(*args: str, duration: float = STREAM_SECONDS) -> Any:
    command = ["stream", "--rate", str(STREAM_RATE), "--duration", str(duration), "--seed", str(SEED), *args]
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 0, result.output
    return result


def test_a_share_of_the_labels_arrives_later_in_label_files(aws) -> None:  # type: ignore[no-untyped-def]
    # GIVEN the same seeded rows streamed once with their labels on the records, as the reference of the truth
    stream_command("--label", "--run-name", "truth", duration=TRUTH_SECONDS)
    truth_source = source_id_for("sim://truth")
    truth = {r.fields[2]: r.fields[LABEL_INDEX] for r in read_stream(aws.stream_name).records}
    assert set(truth.values()) == {0, 1}
    # WHEN they are streamed again without labels, half of the labels held back for a second
    started = datetime.now(tz=UTC)
    result = stream_command(
        "--run-name", "late", "--label-share", str(SHARE), "--label-delay", str(DELAY_SECONDS),
        "--label-file-seconds", "0.5",
    )  # fmt: skip
    source = source_id_for("sim://late")
    streamed = {r.record_id: r for r in read_stream(aws.stream_name).records if r.record_id.startswith(source)}
    files = label_files()
    labels = [row for rows in files.values() for row in rows]
    # THEN the records carried no label
    assert 200 <= len(streamed) <= STREAM_RATE * STREAM_SECONDS
    assert {r.fields[2] for r in streamed.values()} <= set(truth)
    assert all(r.fields[LABEL_INDEX] is None for r in streamed.values())
    # AND every label names one streamed record, once, and about half the records got one
    ids = Counter(row["record_id"] for row in labels)
    assert set(ids) <= set(streamed)
    assert max(ids.values()) == 1
    assert len(labels) / len(streamed) == pytest.approx(SHARE, abs=0.1)
    # AND each is the record's true label, known no earlier than a second after the record was sent
    for row in labels:
        record = streamed[row["record_id"]]
        observed = datetime.fromisoformat(row["observed_at"])
        assert observed.utcoffset() is not None
        assert observed >= sent_at(record) + timedelta(seconds=DELAY_SECONDS)
        assert observed >= started
        assert int(row["churned"]) == truth[record.fields[2]]
    # AND they came in several files of the run, and the summary accounts for every label
    assert len(files) >= 2
    assert all(
        re.fullmatch(rf"{get_settings().labels_prefix}stream-labels-{source}-\d{{8}}T\d{{12}}Z-\d{{5}}\.csv", k)
        for k in files
    )
    output = " ".join(result.output.split())
    assert f"{len(labels)} delivered in {len(files)} files" in output
    assert "0 not delivered" in output
    assert truth_source not in "".join(files)


def test_the_stream_command_sends_no_labels_and_writes_no_label_files_by_default(aws) -> None:  # type: ignore[no-untyped-def]
    result = stream_command("--run-name", "plain")
    records = read_stream(aws.stream_name).records
    assert records
    assert all(r.fields[LABEL_INDEX] is None for r in records)
    assert label_files() == {}
    assert "labels: none" in " ".join(result.output.split())


def interrupted_after(rows: Iterator[CustomerRow], count: int) -> Iterator[CustomerRow]:
    yield from itertools.islice(rows, count)
    raise KeyboardInterrupt


def test_ctrl_c_ends_the_stream_with_what_was_sent_flushed(aws) -> None:  # type: ignore[no-untyped-def]
    # GIVEN rows that stop with Ctrl-C after 120 of them
    rows = interrupted_after(csv_rows([SAMPLES_DIR / "sample_drifted.csv"]), 120)
    writer = KinesisWriter(stream_name=aws.stream_name, kinesis=client("kinesis"))
    # WHEN streamed for far longer than that takes
    summary = stream_rows(rows, writer=writer, run_name="stopped", rate=1_000, duration=60)
    # THEN the run ends there, every row sent is on the stream, and the summary says it was stopped
    assert (summary.rows, summary.interrupted) == (120, True)
    assert len(read_stream(aws.stream_name).records) == 120


def score_the_stream(aws: StackResources, *, engine: Engine, checkpoints: Path) -> None:
    """The scorer handler fed by the local Lambda service's shard pollers until the stream is consumed."""
    mapping = {**event_source_mappings()["stream_scorer"], "maximum_batching_window_in_seconds": 0}
    config = KinesisMappingConfig.from_mapping(mapping, on_failure_queue_url=aws.scorer_dlq_url)
    models = ModelCache(name="XGBoostChurnModel", alias="staging", refresh_seconds=60)
    incarnations = StreamIncarnations()

    def scorer(event: dict[str, Any], _context: Any) -> dict[str, Any]:
        return handle(event, models=models, engine=engine, incarnations=incarnations)

    pollers = [
        KinesisShardPoller(
            name="stream_scorer",
            stream_name=aws.stream_name,
            stream_arn=aws.stream_arn,
            shard_id=shard["ShardId"],
            handler=scorer,
            config=config,
            checkpoints=CheckpointStore(checkpoints),
            stats=MappingStats(),
            sleep=lambda _: None,
        )
        for shard in client("kinesis").list_shards(StreamName=aws.stream_name)["Shards"]
    ]
    idle = 0
    for _ in range(MAX_ROUNDS):
        idle = 0 if sum(p.poll_once() for p in pollers) else idle + 1
        if idle >= IDLE_ROUNDS_TO_STOP:
            return
    pytest.fail("the stream was not consumed")


@pytest.mark.usefixtures("registered_model")
def test_the_monitor_joins_the_streamed_labels_onto_the_scored_records(aws, sqlite_url, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # GIVEN a stream whose labels are half held back for a second, its records scored as the stack scores them
    stream_command(
        "--run-name", "joined", "--label-share", str(SHARE), "--label-delay", str(DELAY_SECONDS),
        "--label-file-seconds", "0.5",
    )  # fmt: skip
    engine = get_engine(sqlite_url)
    score_the_stream(aws, engine=engine, checkpoints=tmp_path / "checkpoints.json")
    expected = {row["record_id"]: int(row["churned"]) for rows in label_files().values() for row in rows}
    # WHEN the monitor's label step ingests the label files
    settings = get_settings()
    now = datetime.now(tz=UTC)
    ingested = ingest_labels(
        engine, client("s3"), bucket=settings.bucket, prefix=settings.labels_prefix, now=now, received_at=now,
        retention_days=0,
    )  # fmt: skip
    # THEN every label joined its prediction, and exactly the held-back records are labelled, with their label
    assert sum(f.joined for f in ingested.files) == len(expected) > 0
    assert sum(f.rows for f in ingested.files) == len(expected)
    with engine.connect() as connection:
        stored = dict(connection.execute(select(predictions.c.record_id, predictions.c.label)).all())
    assert {record_id: label for record_id, label in stored.items() if label is not None} == expected
    assert len(stored) > len(expected)
