"""The demo path end to end on the embedded local stack: emulator over HTTP, local Lambda service,
real MLflow registry, real Postgres, Prefect server with the served monitor deployment."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from data.churn_csv import read_churn_csv, write_churn_csv
from data.synthetic import generate, strong_drift
from infra.local.demo import run_demo
from tests.conftest import free_port, training_data_path

pytestmark = pytest.mark.e2e

ROWS_PER_FILE = 400
BAD_ROWS = (
    "1,0,30,0,100,10,1,5,7,1,1,30,10.5,0",  # age group 7
    "x,0,30,0,100,10,1,5,3,1,1,30,10.5,0",  # non-numeric
    "1,0,30,0,100,10,1,5,3,1,1,30",  # ragged
)


@pytest.fixture
def demo_files(tmp_path: Path) -> tuple[Path, Path, Path]:
    """Two reference-like files and a strongly drifted one (with bad rows), all drawn from the training data."""
    base = read_churn_csv(training_data_path())
    reference_like = tmp_path / "reference_like.csv"
    another = tmp_path / "another_reference_like.csv"
    drifted = tmp_path / "drifted.csv"
    write_churn_csv(generate(n_rows=ROWS_PER_FILE, seed=11, base=base), reference_like, original_headers=True)
    write_churn_csv(generate(n_rows=ROWS_PER_FILE, seed=13, base=base), another, original_headers=True)
    write_churn_csv(
        generate(n_rows=ROWS_PER_FILE, seed=12, base=base, drift=strong_drift()), drifted, original_headers=True
    )
    with drifted.open("a") as handle:
        handle.write("\n".join(BAD_ROWS) + "\n")
    return reference_like, drifted, another


def test_demo_scores_every_row_and_alerts_on_drift_only(
    tmp_path: Path, env, registered_model, postgres_url: str, demo_files: tuple[Path, Path, Path]
) -> None:
    # GIVEN a fresh local stack on free ports, a registered model and real Postgres
    state = tmp_path / "state"
    env(
        LOCAL_STATE_DIR=str(state),
        LOCAL_AWS_PORT=str(free_port()),
        LOCAL_PREFECT_PORT=str(free_port()),
        DATABASE_URL=postgres_url,
        MONITOR_WINDOW_SECONDS="6",
        MONITOR_LATENESS_SECONDS="1",
        MONITOR_SCHEDULE_SECONDS="3",
    )
    reference_like, drifted, another = demo_files
    output = io.StringIO()

    # WHEN the demo drops both files
    summary = run_demo([reference_like, drifted], console=Console(file=output, width=120))

    # THEN every row is either scored exactly once or rejected with a reason
    assert summary.rows_in == 2 * ROWS_PER_FILE + len(BAD_ROWS)
    assert summary.rejected == len(BAD_ROWS)
    assert summary.records_scored == 2 * ROWS_PER_FILE
    assert summary.duplicates == 0
    assert summary.invariant_holds
    # AND each file is a window of its own; only the drifted one raises a data-drift alert
    assert len(summary.windows) == 2
    by_start = sorted(summary.windows, key=lambda w: w.start)
    assert [w.rows for w in by_start] == [ROWS_PER_FILE, ROWS_PER_FILE]
    assert by_start[0].dataset_drift is False
    assert by_start[1].dataset_drift is True
    drift_alerts = [a for a in summary.alerts if a.kind == "data_drift"]
    assert [a.window_start for a in drift_alerts] == [by_start[1].start]
    # AND the alert arrived through SNS -> SQS and was written to the outbox
    outbox = [json.loads(p.read_text()) for p in (state / "outbox").glob("*.json")]
    assert any(m["Subject"] == drift_alerts[0].subject for m in outbox)
    assert "ALERT" in output.getvalue()

    # WHEN the demo runs again on the same state (a new stream, the Prefect server restarted on its database)
    # with the drifted file again and a file it has not seen
    again = run_demo([drifted, another], console=Console(file=io.StringIO(), width=120))

    # THEN the repeat is recognised: its records were stored by the first run, none twice, and it adds no window
    assert [(f.name, f.repeat) for f in again.files] == [(drifted.name, True), (another.name, False)]
    assert again.duplicates == 0
    # AND every record of the new file is stored, in a window of its own whose evaluation counted them all
    assert again.rows_in == 2 * ROWS_PER_FILE + len(BAD_ROWS)
    assert again.records_scored == 2 * ROWS_PER_FILE
    assert again.invariant_holds
    assert [w.rows for w in again.windows] == [ROWS_PER_FILE]
    assert again.windows[0].start > by_start[1].start
