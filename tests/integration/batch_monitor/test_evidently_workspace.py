"""Each window's Evidently runs in a local workspace, and ``evidently ui`` (``make evidently-ui``) serving it."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from batch_monitor.alerting.rules import WINDOW_KINDS, AlertKind
from batch_monitor.evaluation.drift import evaluate_window
from batch_monitor.flow import monitor_windows
from batch_monitor.reports.dashboard import PANEL_TITLES
from batch_monitor.reports.workspace import add_evaluation_to_workspace, ui_command
from churn_common.settings import get_settings
from tests.conftest import free_port
from tests.integration.batch_monitor.conftest import closed_after, outbox_messages, scored_rows, window_at
from tests.local_servers import served

pytestmark = pytest.mark.integration

UI_START_TIMEOUT_SECONDS = 90


def workspace_runs(path: Path, project_name: str) -> tuple[Any, list[Any]]:
    """The project and its stored runs, read back through Evidently's own workspace API."""
    from evidently.ui.workspace import Workspace

    workspace = Workspace(str(path))
    [project] = [p for p in workspace.search_project(project_name) if p.name == project_name]
    return project, [workspace.get_run(project.id, run_id) for run_id in workspace.list_runs(project.id)]


@pytest.mark.usefixtures("prefect_server")
def test_a_monitor_run_puts_each_window_into_the_workspace(monitor_env, env, batch, put_window, tmp_path) -> None:  # type: ignore[no-untyped-def]
    # GIVEN a workspace folder of this test and a labelled window
    workspace = tmp_path / "evidently"
    env(EVIDENTLY_WORKSPACE=str(workspace), EVIDENTLY_PROJECT="churn-test", EVIDENTLY_WORKSPACE_ENABLED="true")
    window = window_at(0)
    put_window(batch(n_rows=300, seed=21), window=window)

    # WHEN the monitor evaluates it
    [evaluated] = monitor_windows(now=closed_after(window)).windows

    # THEN the workspace holds the project with that window's runs, stamped with the window and version
    _, runs = workspace_runs(workspace, "churn-test")
    assert runs
    for run in runs:
        assert run.metadata["window_start"] == window.start.isoformat()
        assert run.metadata["window_end"] == window.end.isoformat()
        assert run.metadata["model_version"] == evaluated.model_version
        assert run.timestamp.replace(tzinfo=None) == window.start.replace(tzinfo=None)
        assert f"model_version={evaluated.model_version}" in run.tags
        assert run.metric_results  # the computed metrics, not an empty shell
    # AND its figures run holds the window's alert verdicts: 1 for each kind alerted on
    [figures] = [run for run in runs if run.name.endswith("(figures)")]
    values = {r.display_name.split("'")[1]: float(r.value) for r in figures.metric_results.values()}
    verdicts = {name.removeprefix("alert_"): value for name, value in values.items() if name.startswith("alert_")}
    assert {kind for kind, value in verdicts.items() if value == 1.0} == set(evaluated.alerts)
    assert verdicts.keys() >= {"data_drift", "quality"}
    # AND the drift result in the workspace is the one the monitor stored
    shares = [float(r.share.value) for run in runs for r in run.metric_results.values() if hasattr(r, "share")]
    assert any(share == pytest.approx(evaluated.drift_share) for share in shares)


@pytest.mark.usefixtures("prefect_server")
def test_with_the_workspace_off_a_monitor_run_writes_none_and_e_mails_link_no_evidently_dashboard(  # type: ignore[no-untyped-def]
    monitor_env, env, batch, put_window, tmp_path
) -> None:
    # GIVEN the workspace switched off, as on AWS, no Grafana, and a strongly drifted labelled window
    workspace = tmp_path / "evidently"
    env(EVIDENTLY_WORKSPACE=str(workspace), EVIDENTLY_WORKSPACE_ENABLED="false", GRAFANA_URL="")
    window = window_at(0)
    put_window(batch(n_rows=300, seed=22, drifted=True), window=window)
    # WHEN the monitor evaluates it
    [evaluated] = monitor_windows(now=closed_after(window)).windows
    # THEN the window is judged and alerted on as ever, but no workspace folder is written
    assert "data_drift" in evaluated.alerts
    assert not workspace.exists()
    # AND its e-mail names the report but no dashboard: there is no Evidently UI to point at
    [body] = [text for subject, text in outbox_messages(monitor_env.alerts_outbox_url) if "Data drift" in subject]
    assert "Report: s3://" in body
    assert "Dashboard:" not in body


@pytest.fixture
def filled_workspace(env, tmp_path, base_rows, serving_model, batch) -> Path:  # type: ignore[no-untyped-def]
    """A workspace holding one evaluated window, written by the monitor's hook."""
    import pandas as pd

    workspace = tmp_path / "evidently"
    env(
        EVIDENTLY_WORKSPACE=str(workspace),
        EVIDENTLY_PROJECT="churn-ui-test",
        LOCAL_STATE_DIR=str(tmp_path),
        EVIDENTLY_WORKSPACE_ENABLED="true",
    )
    window = window_at(3)
    current = pd.DataFrame(scored_rows(batch(n_rows=200, seed=31), model=serving_model, window=window))
    reference = base_rows.rename(columns={"churn": "label"}).assign(
        churn_probability=serving_model.predict_proba(base_rows.iloc[:, :13].to_numpy(dtype="float32"))
    )
    reference["churn_prediction"] = (reference["churn_probability"] >= 0.5).astype(int)
    evaluation = evaluate_window(current, reference, window=window, model_version=serving_model.version)
    # The figures the stored-window path adds (estimates, shadow-scored challenger), so every panel has data.
    evaluation = replace(
        evaluation,
        estimated_f1=0.81,
        estimate_error=0.81 - (evaluation.f1 or 0.0),
        challenger_f1=0.77,
        challenger_estimated_f1=0.79,
        agreement=0.93,
    )
    # A second write of the same window replaces its runs rather than adding copies.
    # Every kind judged, so the alerts panel has a value for each.
    crossed = {str(kind): kind is AlertKind.DATA_DRIFT for kind in WINDOW_KINDS}
    first = add_evaluation_to_workspace(evaluation, crossed=crossed)
    assert add_evaluation_to_workspace(evaluation, crossed=crossed) == first
    return workspace


@pytest.fixture
def evidently_ui(filled_workspace: Path) -> Iterator[str]:
    """``evidently ui`` as ``make evidently-ui`` starts it, on a free port; stopped afterwards."""
    port = free_port()
    with served(
        ui_command(get_settings(), port=port),
        port=port,
        health_path="/api/projects",
        log_path=filled_workspace.parent / "evidently-ui.log",
        timeout=UI_START_TIMEOUT_SECONDS,
        name="evidently ui",
        env={"DO_NOT_TRACK": "1"},
    ) as url:
        yield url


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200
        return json.load(response)


def test_evidently_ui_serves_the_workspace_over_http(evidently_ui: str, filled_workspace: Path) -> None:
    # GIVEN the UI running on the workspace the monitor writes
    # WHEN its project list and the project's runs are requested
    projects = get_json(f"{evidently_ui}/api/projects")
    # THEN it lists the monitor's project with the window's runs, read from the workspace files
    [project] = [p for p in projects if p["name"] == "churn-ui-test"]
    snapshots = get_json(f"{evidently_ui}/api/projects/{project['id']}/snapshots")
    _, runs = workspace_runs(filled_workspace, "churn-ui-test")
    assert len(snapshots) == len(runs) > 0
    assert {s["metadata"]["window_start"] for s in snapshots} == {window_at(3).start.isoformat()}
    # AND the UI page itself is served
    with urllib.request.urlopen(f"{evidently_ui}/", timeout=10) as response:
        assert response.status == 200
        assert b"<html" in response.read().lower()


def post_json(url: str, body: dict[str, Any]) -> Any:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def test_every_dashboard_series_finds_the_stored_values(evidently_ui: str) -> None:
    # GIVEN the UI on a workspace the monitor's hook filled with one labelled window
    [project] = [p for p in get_json(f"{evidently_ui}/api/projects") if p["name"] == "churn-ui-test"]
    # WHEN the dashboard and each panel's series are requested as the UI's page requests them
    dashboard = get_json(f"{evidently_ui}/api/v2/dashboards/{project['id']}")
    assert [p["title"] for p in dashboard["panels"]] == list(PANEL_TITLES)
    for panel in dashboard["panels"]:
        filters = [
            {key: value[key] for key in ("metric", "tags", "metadata", "metric_labels")} for value in panel["values"]
        ]
        series = post_json(
            f"{evidently_ui}/api/v2/snapshots/{project['id']}/data_series_batch", {"series_filter": filters}
        )["series"]
        # THEN each of the panel's metric references finds a value of the window's run
        assert {s["filter_index"] for s in series} == set(range(len(filters))), panel["title"]
        assert all(len(s["values"]) == 1 and s["values"][0] is not None for s in series), panel["title"]


def test_a_window_evaluated_again_keeps_only_its_new_runs_and_its_figures(filled_workspace: Path) -> None:  # type: ignore[no-untyped-def]
    # GIVEN the workspace holding one window (one Evidently run and its figures run)
    _, before = workspace_runs(filled_workspace, "churn-ui-test")
    assert sum(run.name.endswith("(figures)") for run in before) == 1
    [window_start] = {run.metadata["window_start"] for run in before}
    assert len(before) == 2
    # WHEN the same window is written again with two runs (partly labelled), then again with one (labels in)
    from batch_monitor.core import WindowMetrics
    from batch_monitor.reports.window_figures import figures_run
    from batch_monitor.reports.workspace import add_to_workspace

    settings = get_settings()
    window = window_at(3)
    version = before[0].metadata["model_version"]
    drift_run = next(run for run in before if not run.name.endswith("(figures)"))
    assert window.start.isoformat() == window_start

    def write(runs: int, coverage: float) -> list[str]:
        return add_to_workspace(
            [_Rerun(drift_run)] * runs,
            workspace=filled_workspace,
            project_name=settings.evidently_project,
            window=window,
            model_version=version,
            figures=figures_run(WindowMetrics(label_coverage=coverage, f1=0.7, estimated_f1=0.8)),
        )

    assert len(write(2, 0.6)) == 3
    assert len(write(1, 1.0)) == 2
    # THEN the run the new evaluation no longer has is gone, and the figures run holds the latest figures
    _, after = workspace_runs(filled_workspace, "churn-ui-test")
    assert sorted(run.name for run in after) == sorted(run.name for run in before)
    [figures] = [run for run in after if run.name.endswith("(figures)")]
    values = {r.display_name.split("'")[1]: float(r.value) for r in figures.metric_results.values()}
    assert values == {"label_coverage": 1.0, "f1": 0.7, "estimated_f1": 0.8}


class _Rerun:
    """A stored run handed back to the workspace as the monitor hands it a fresh one."""

    def __init__(self, run: Any) -> None:
        self._run = run

    def to_snapshot_model(self) -> Any:
        return self._run
