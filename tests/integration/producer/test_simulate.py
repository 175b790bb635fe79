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
from churn_common.settings import get_settings
from churn_common.wire import LABEL_INDEX, source_id_for
from producer.kinesis_writer import KinesisWriter
from producer.simulate import SAMPLES_DIR, app, csv_rows, generated_rows, stream_rows
from tests.integration.producer.conftest import Drops, read_stream

pytestmark = pytest.mark.integration

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
    # THEN close to the target went out (paced, not bursting), each on the stream once, stamped with send time
    assert 400 <= summary.rows <= 1_000
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
