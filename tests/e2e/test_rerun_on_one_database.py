"""A second run of the pipeline on the same database stores every new record: each run is a new process
with a new emulator, whose Kinesis sequence numbers start again (as a re-created stream's do on AWS)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from churn_common.database import get_engine, predictions
from data.churn_csv import read_churn_csv, write_churn_csv
from data.synthetic import generate
from tests.conftest import REPO_ROOT, free_port, training_data_path

pytestmark = pytest.mark.e2e

ROWS = 600
RUN_TIMEOUT_SECONDS = 240


def run_stack_once(path: Path, key: str, *, environment: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tests.e2e.stack_run", str(path), key, str(ROWS)],
        env=environment,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_SECONDS,
        check=False,
    )


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
def test_two_stack_runs_on_one_database_store_every_record_of_both(
    tmp_path: Path, registered_model, database: str, request: pytest.FixtureRequest
) -> None:
    # GIVEN two different files and one database that outlives the stack runs
    database_url = str(request.getfixturevalue("sqlite_url" if database == "sqlite" else "postgres_url"))
    base = read_churn_csv(training_data_path())
    files = []
    for seed in (21, 22):
        path = tmp_path / f"file-{seed}.csv"
        write_churn_csv(generate(n_rows=ROWS, seed=seed, base=base), path, original_headers=True)
        files.append(path)
    environment = {
        **os.environ,
        "LOCAL_STATE_DIR": str(tmp_path / "state"),
        "LOCAL_AWS_PORT": str(free_port()),
        "DATABASE_URL": database_url,
    }
    environment.pop("AWS_ENDPOINT_URL", None)
    # WHEN the stack runs twice in new processes, one file each
    runs = [run_stack_once(path, f"data/input/{path.name}", environment=environment) for path in files]
    # THEN each run stored all of its records, and the database holds both files in full
    for run in runs:
        assert run.returncode == 0, run.stdout + run.stderr[-3000:]
    with get_engine(database_url).connect() as connection:
        per_source = connection.execute(
            select(predictions.c.source_id, func.count()).group_by(predictions.c.source_id)
        ).all()
    assert sorted(count for _, count in per_source) == [ROWS, ROWS]
