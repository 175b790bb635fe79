"""The demo path end to end on the embedded local stack: emulator over HTTP, local Lambda service,
real MLflow registry, real Postgres, Prefect server with the served monitor deployment; then the Prefect and
Evidently UIs on the state that run left, in headless Chromium."""

from __future__ import annotations

import io
import json
import os
import sys
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from sklearn.metrics import f1_score
from sqlalchemy import create_engine, select

from batch_monitor.reports.dashboard import (
    ALERTS_TITLE,
    CHALLENGER_TITLE,
    COLUMN_DRIFT_TITLE,
    DRIFT_SHARE_TITLE,
    ESTIMATE_ERROR_TITLE,
    LABELS_TITLE,
    PANEL_TITLES,
    QUALITY_TITLE,
)
from batch_monitor.reports.workspace import ui_command
from churn_common.database import predictions
from churn_common.schema import FEATURE_COLUMNS
from churn_common.settings import get_settings
from data.churn_csv import read_churn_csv, write_churn_csv
from data.synthetic import generate, strong_drift
from infra.local.demo import MONITOR_DEPLOYMENT, run_demo
from infra.local.prefect_runs import prefect_ui_url
from infra.local.stack import PREFECT_UI, TELEMETRY_OFF
from tests.browser import rendered_dom, require_chromium, screenshot
from tests.conftest import free_port, training_data_path
from tests.e2e.rendered_panels import rendered_panels
from tests.local_servers import served

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


@dataclass
class DemoState:
    """The state folder the demo test's runs left behind: the UI test opens both UIs on it instead of running
    the pipeline a third time."""

    folder: Path | None = None

    def require(self) -> Path:
        if self.folder is None:
            pytest.skip("no demo run in this session: the UI test reads the state test_demo_scores_... leaves")
        return self.folder


@pytest.fixture(scope="module")
def demo_state() -> DemoState:
    return DemoState()


@pytest.mark.usefixtures("registered_model")
def test_demo_scores_every_row_and_alerts_on_drift_only(
    tmp_path: Path, env, postgres_url: str, demo_files: tuple[Path, Path, Path], demo_state: DemoState
) -> None:
    # GIVEN a fresh local stack on free ports, a registered model and real Postgres
    state = tmp_path / "state"
    env(
        LOCAL_STATE_DIR=str(state),
        LOCAL_AWS_PORT=str(free_port()),
        LOCAL_PREFECT_PORT=str(free_port()),
        DATABASE_URL=postgres_url,
        EVIDENTLY_WORKSPACE_ENABLED="true",
        MONITOR_WINDOW_SECONDS="6",
        MONITOR_LATENESS_SECONDS="1",
        MONITOR_SCHEDULE_SECONDS="3",
    )
    reference_like, drifted, another = demo_files
    output = io.StringIO()

    # WHEN the demo drops both files, the reference-like one without its labels, which follow as a label file
    summary = run_demo(
        [reference_like, drifted], console=Console(file=output, width=120), labels_later=[reference_like.name]
    )
    demo_state.folder = state

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
    # AND the file whose labels came later was judged on the estimate first, then again on its labels
    [late] = summary.labels_later
    assert (late.file, late.labels) == (reference_like.name, ROWS_PER_FILE)
    [before], [after] = late.before, late.after
    assert before.start == after.start == by_start[0].start
    assert (before.label_coverage, before.f1, before.estimate_error) == (0.0, None, None)
    assert before.estimated_f1 is not None
    assert after.label_coverage == 1.0
    assert after.estimated_f1 == pytest.approx(before.estimated_f1)
    assert after.estimate_error == pytest.approx(after.estimated_f1 - after.f1)
    assert by_start[0].label_coverage == 1.0
    # AND its realised F1 is the one the file's own labels give on the stored decisions
    truth = read_churn_csv(reference_like)["churn"].to_numpy()
    with create_engine(postgres_url).connect() as connection:
        stored = connection.execute(
            select(predictions.c.row, predictions.c.label, predictions.c.churn_prediction).where(
                predictions.c.event_time >= after.start, predictions.c.event_time < after.end
            )
        ).all()
    assert [label for row, label, _ in sorted(stored)] == [int(truth[row - 1]) for row, _, _ in sorted(stored)]
    assert after.f1 == pytest.approx(f1_score([r.label for r in stored], [r.churn_prediction for r in stored]))

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


# Where the UI test saves its screenshots; `UI_SCREENSHOTS_DIR=docs/images` refreshes the README's pictures.
SCREENSHOTS_ENV = "UI_SCREENSHOTS_DIR"
EVIDENTLY_SCREENSHOT = "evidently-dashboard.png"
PREFECT_SCREENSHOT = "prefect-runs.png"
EVIDENTLY_SCREENSHOT_SIZE = (1400, 2200)
UI_START_TIMEOUT_SECONDS = 120
DEMO_WINDOWS = 3  # the first run's two files and the second run's new one
PREFECT_UI_VERSION = "v2"  # the UI the server's root redirects a browser to
COMPLETED = "COMPLETED"
COMPLETED_RUNS_QUERY = urllib.parse.urlencode({"state-types": json.dumps([COMPLETED])})


def _json(url: str, body: dict[str, Any] | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def test_prefect_and_evidently_uis_show_the_demo_run(env, tmp_path: Path, demo_state: DemoState) -> None:
    # GIVEN the state the demo runs left (their stack is stopped: each UI is started on that state again)
    state = demo_state.require()
    require_chromium()
    env(LOCAL_STATE_DIR=str(state))
    settings = get_settings()
    shots = Path(os.environ.get(SCREENSHOTS_ENV) or tmp_path / "screenshots")
    prefect_port = free_port()
    prefect_env = {
        **TELEMETRY_OFF,
        **PREFECT_UI,
        "PREFECT_HOME": str(state / "prefect"),
        "PREFECT_API_URL": f"http://127.0.0.1:{prefect_port}/api",
    }
    prefect_command = [str(Path(sys.executable).with_name("prefect")), "server", "start", "--host", "127.0.0.1"]
    with (
        served(
            [*prefect_command, "--port", str(prefect_port)],
            port=prefect_port,
            health_path="/api/health",
            log_path=tmp_path / "prefect-server.log",
            timeout=UI_START_TIMEOUT_SECONDS,
            name="prefect server",
            env=prefect_env,
        ) as prefect,
        served(
            ui_command(settings),
            port=settings.evidently_ui_port,
            health_path="/api/projects",
            log_path=tmp_path / "evidently-ui.log",
            timeout=UI_START_TIMEOUT_SECONDS,
            name="evidently ui",
            env={"DO_NOT_TRACK": "1"},
        ) as evidently,
    ):
        assert evidently == settings.evidently_ui_url
        [project] = [p for p in _json(f"{evidently}/api/projects") if p["name"] == settings.evidently_project]
        dashboard = f"{evidently}/projects/{project['id']}"

        # WHEN the project's dashboard is opened
        dom = rendered_dom(dashboard)
        panels = rendered_panels(dom)
        screenshot(dashboard, shots / EVIDENTLY_SCREENSHOT, size=EVIDENTLY_SCREENSHOT_SIZE)

        # THEN each of the monitor's panels is drawn once (two demo runs added none), with a line through every
        # demo window
        assert set(PANEL_TITLES) <= set(panels), sorted(panels)
        assert [dom.count(f">{title}</h5>") for title in PANEL_TITLES] == [1] * len(PANEL_TITLES)
        drift_share = panels[DRIFT_SHARE_TITLE]
        assert (drift_share.lines, drift_share.points) == (1, DEMO_WINDOWS)
        quality = panels[QUALITY_TITLE]
        assert sorted(quality.legend) == ["F1", "accuracy", "precision", "recall"]
        assert (quality.lines, quality.points) == (4, 4 * DEMO_WINDOWS)
        labels = panels[LABELS_TITLE]
        assert sorted(labels.legend) == ["estimated F1", "label coverage", "realised F1"]
        assert (labels.lines, labels.points) == (3, 3 * DEMO_WINDOWS)
        error = panels[ESTIMATE_ERROR_TITLE]
        assert (error.lines, error.points) == (1, DEMO_WINDOWS)
        assert {"champion F1", "champion estimated F1"} <= set(panels[CHALLENGER_TITLE].legend)
        alerts = panels[ALERTS_TITLE]
        assert sorted(alerts.legend) == sorted(["data_drift", "prediction_drift", "quality", "estimate_error"])
        assert alerts.points >= 3 * DEMO_WINDOWS
        columns = panels[COLUMN_DRIFT_TITLE]
        assert sorted(columns.legend) == sorted([*FEATURE_COLUMNS, "churn_probability"])
        assert (columns.lines, columns.points) == (len(FEATURE_COLUMNS) + 1, (len(FEATURE_COLUMNS) + 1) * DEMO_WINDOWS)
        # AND the drift alert's e-mail links this very dashboard (no Grafana configured)
        outbox = [json.loads(p.read_text()) for p in (state / "outbox").glob("*.json")]
        drift_mails = [m["Message"] for m in outbox if "Data drift" in m.get("Subject", "")]
        assert drift_mails
        assert all(f"Dashboard: {dashboard}" in body.splitlines() for body in drift_mails)

        # WHEN the Prefect UI, served from the server's root, lists the completed flow runs
        assert prefect == prefect_ui_url(settings.model_copy(update={"local_prefect_port": prefect_port}))
        ui = _json(f"{prefect}/ui-settings")
        assert ui["default_ui"] == PREFECT_UI_VERSION
        root = urllib.request.Request(f"{prefect}/", headers={"Accept": "text/html"})
        with urllib.request.urlopen(root, timeout=30) as response:
            assert response.url.rstrip("/") == f"{prefect}{ui[f'{PREFECT_UI_VERSION}_base_url']}"
            assert b"<html" in response.read().lower()
        completed_runs = f"{prefect}{ui[f'{PREFECT_UI_VERSION}_base_url']}/runs?{COMPLETED_RUNS_QUERY}"
        page = rendered_dom(completed_runs)
        screenshot(completed_runs, shots / PREFECT_SCREENSHOT)

        # THEN the page names the monitor's flow and each of its completed runs, as the API knows them
        flow_name, deployment_name = MONITOR_DEPLOYMENT.split("/")
        runs = _json(
            f"{prefect}/api/flow_runs/filter",
            {
                "deployments": {"name": {"any_": [deployment_name]}},
                "flow_runs": {"state": {"type": {"any_": [COMPLETED]}}},
            },
        )
        assert runs, "the demo's monitor runs are in the Prefect database"
        assert flow_name in page
        assert [run["name"] for run in runs if run["name"] not in page] == []
