"""The simulators against the emulator: file drops land in the input prefix and notify; the record
stream goes through the producer's writer at the requested pace."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from churn_common.aws import client
from churn_common.schema import FEATURE_COLUMNS
from churn_common.settings import get_settings
from churn_common.wire import LABEL_INDEX, source_id_for
from infra.local.simulate import (
    SAMPLES_DIR,
    StreamProgress,
    app,
    csv_rows,
    default_drop_files,
    generated_rows,
    stream_rows,
    summary_text,
)
from producer.kinesis_writer import KinesisWriter
from tests.integration.producer.conftest import Drops, read_stream

pytestmark = pytest.mark.integration


@pytest.fixture
def drops(aws) -> Drops:  # type: ignore[no-untyped-def]
    return Drops(aws)


SAMPLE = SAMPLES_DIR / "sample_drifted.csv"


class FakeClock:
    """Time that moves only when the code under test sleeps, so pacing is exact and instant."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_stream_is_paced_to_the_target_rate(aws) -> None:
    # GIVEN rows from a sample file, a target of 400 rows/s for 2.5 s on a clock that moves only by sleeping
    clock = FakeClock()
    writer = KinesisWriter(stream_name=aws.stream_name, kinesis=client("kinesis"))
    # WHEN streamed
    summary = stream_rows(
        csv_rows([SAMPLE]), writer=writer, run_name="paced", rate=400, duration=2.5, clock=clock, sleep=clock.sleep
    )
    # THEN exactly rate x duration rows went out, all of them acknowledged, under the simulator's source id
    assert summary.rows == 1000
    assert summary.achieved_rate == pytest.approx(400, rel=0.01)
    assert summary.writes.user_records == 1000
    stream = read_stream(aws.stream_name)
    assert Counter(stream.record_ids) == Counter(f"{source_id_for('sim://paced')}:{n}" for n in range(1, 1001))


def test_stream_of_generated_rows_in_real_time(aws) -> None:
    # GIVEN synthetic rows without labels, 2,000 rows/s for half a second of real time
    writer = KinesisWriter(stream_name=aws.stream_name, kinesis=client("kinesis"))
    started = datetime.now(tz=UTC)
    summary = stream_rows(
        generated_rows(seed=11, with_label=False, block_rows=300),
        writer=writer,
        run_name="live",
        rate=2_000,
        duration=0.5,
    )
    # THEN no more than the target went out (paced, not bursting; the exact pacing is the fake-clock test's, a
    # loaded machine sends fewer), each on the stream once, stamped with send time
    assert 0 < summary.rows <= 1_000
    records = read_stream(aws.stream_name).records
    assert len(records) == summary.rows == len({r.record_id for r in records})
    assert all(r.fields[LABEL_INDEX] is None for r in records)
    assert min(r.fields[3] for r in records) >= int(started.timestamp() * 1000)


def test_csv_rows_skip_bad_rows_and_cycle(tmp_path: Path) -> None:
    # GIVEN a file of two good rows and one bad one
    header = SAMPLE.read_text().splitlines()[0]
    good = SAMPLE.read_text().splitlines()[1]
    path = tmp_path / "small.csv"
    path.write_text("\n".join([header, good, "1,2,3", good]) + "\n")
    # WHEN five rows are taken THEN they are the good rows, repeated
    rows = list(itertools.islice(csv_rows([path]), 5))
    assert len(rows) == 5
    assert len({r.model_dump_json() for r in rows}) == 1


def test_file_drops_command_uploads_to_the_input_prefix(drops: Drops, tmp_path: Path) -> None:
    # GIVEN two small files
    lines = SAMPLE.read_text().splitlines()
    paths = []
    for name in ("one.csv", "two.csv"):
        path = tmp_path / name
        path.write_text("\n".join(lines[:11]) + "\n")
        paths.append(path)
    # WHEN the command drops them with no pause
    result = CliRunner().invoke(app, ["file-drops", *map(str, paths), "--interval", "0"])
    # THEN both are in the input prefix and each produced a notification
    assert result.exit_code == 0, result.output
    prefix = get_settings().input_prefix
    assert {f"{prefix}one.csv", f"{prefix}two.csv"} <= drops.stored_keys()
    bodies = [m["Body"] for m in drops.messages(expected=2, include_test_event=False)]
    assert sorted(b for b in bodies if "one.csv" in b or "two.csv" in b) == sorted(bodies)
    assert len(bodies) == 2


def test_file_drops_command_refuses_missing_files(aws, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["file-drops", str(tmp_path / "nope.csv"), "--interval", "0"])
    assert result.exit_code != 0
    assert "not a file" in result.output


def test_stream_command_reports_what_it_sent(aws) -> None:
    # WHEN the command streams a sample file for a moment
    args = ["stream", "--csv", str(SAMPLE), "--rate", "500", "--duration", "0.4", "--run-name", "cli"]
    result = CliRunner().invoke(app, args)
    # THEN it exits cleanly, its summary names the run's source id, and the rows are on the stream
    assert result.exit_code == 0, result.output
    assert source_id_for("sim://cli") in result.output
    assert 0 < len(read_stream(aws.stream_name).records) <= 200


def marked_file(path: Path, *, age: int, rows: int = 50) -> Path:
    """A small data file whose rows all carry one age, so each row on the stream shows its source."""
    header, good = SAMPLE.read_text().splitlines()[:2]
    cells = good.split(",")
    cells[header.split(",").index("Age")] = str(age)
    path.write_text("\n".join([header, *[",".join(cells)] * rows]) + "\n")
    return path


def test_stream_switches_to_drifted_rows_at_the_given_time(aws, tmp_path: Path) -> None:
    # GIVEN reference rows (age 30) and drifted rows (age 55), 400 rows/s for 2.5 s, drifting from 1 s on
    clock = FakeClock()
    seen: list[StreamProgress] = []
    writer = KinesisWriter(stream_name=aws.stream_name, kinesis=client("kinesis"))
    # WHEN streamed
    summary = stream_rows(
        csv_rows([marked_file(tmp_path / "ref.csv", age=30)]),
        writer=writer,
        run_name="drifting",
        rate=400,
        duration=2.5,
        drifted=csv_rows([marked_file(tmp_path / "drifted.csv", age=55)]),
        drift_at=1.0,
        clock=clock,
        sleep=clock.sleep,
        on_progress=seen.append,
    )
    # THEN the first second's rows are reference rows and every later row is drifted
    assert (summary.rows, summary.drifted_rows) == (1000, 600)
    ages = {r.fields[2]: r.fields[4 + FEATURE_COLUMNS.index("age")] for r in read_stream(aws.stream_name).records}
    assert {ages[row] for row in range(1, 401)} == {30}
    assert {ages[row] for row in range(401, 1001)} == {55}
    # AND the progress reports carried the achieved rate and the drifted count as they grew
    assert (seen[-1].rows, seen[-1].drifted_rows) == (1000, 600)
    assert seen[-1].achieved_rate == pytest.approx(400, rel=0.01)
    assert [p.drifted_rows for p in seen] == sorted(p.drifted_rows for p in seen)
    assert "600 drifted rows from 1 s on" in summary_text(summary, target_rate=400)


def test_stream_command_with_synthetic_rows_drifts_midway_and_summarises(aws) -> None:
    # WHEN the command streams generated rows and switches to drifted ones halfway
    args = ["stream", "--rate", "400", "--duration", "1", "--drift-at", "0.5", "--run-name", "cli-drift"]
    result = CliRunner().invoke(app, args)
    # THEN the summary states the achieved rate and the drifted rows, and the rows are on the stream
    assert result.exit_code == 0, result.output
    assert "rows/s (target 400)" in result.output
    assert "drifted rows from 0.5 s on" in result.output
    records = read_stream(aws.stream_name).records
    assert 0 < len(records) <= 400


def test_stream_command_refuses_a_drift_time_outside_the_run(aws) -> None:
    result = CliRunner().invoke(app, ["stream", "--duration", "1", "--drift-at", "2"])
    assert result.exit_code != 0
    assert "--drift-at must be in" in result.output


def test_file_drops_default_to_the_data_files_but_the_training_file(tmp_path: Path) -> None:
    # GIVEN a data folder holding the training file and two data files
    for name in ("customer_churn_0.csv", "customer_churn_1.csv", "customer_churn_2.csv", "notes.txt"):
        (tmp_path / name).write_text("x\n")
    # THEN the data files are dropped, the training file is not; without a folder the samples are
    assert [p.name for p in default_drop_files(tmp_path)] == ["customer_churn_1.csv", "customer_churn_2.csv"]
    samples = [p.name for p in default_drop_files(None)]
    assert samples
    assert "reference.csv" not in samples
    assert all(name.startswith("sample_") for name in samples)


def test_file_drops_command_drops_the_data_folder_files(drops: Drops, env, tmp_path: Path) -> None:
    # GIVEN CHURN_DATA_DIR with a training file and one data file
    marked_file(tmp_path / "customer_churn_0.csv", age=30)
    marked_file(tmp_path / "customer_churn_1.csv", age=40)
    env(CHURN_DATA_DIR=str(tmp_path))
    # WHEN the command runs with no files named
    result = CliRunner().invoke(app, ["file-drops", "--interval", "0"])
    # THEN only the data file was dropped
    assert result.exit_code == 0, result.output
    inputs = {k for k in drops.stored_keys() if k.startswith(get_settings().input_prefix)}
    assert inputs == {f"{get_settings().input_prefix}customer_churn_1.csv"}
