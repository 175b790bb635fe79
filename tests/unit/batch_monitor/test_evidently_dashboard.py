"""The monitor's panels in the Evidently project: written once, replaced in place, others' panels kept."""

from __future__ import annotations

import uuid
from pathlib import Path

from evidently.sdk.models import DashboardPanelPlot, PanelMetric
from evidently.sdk.panels import counter_panel
from evidently.ui.workspace import Workspace

from batch_monitor.reports.dashboard import PANEL_TITLES, TAB_TITLE, ensure_dashboard, monitor_panels
from batch_monitor.reports.workspace import project_dashboard_url, workspace_project
from churn_common.settings import Settings

METRIC_PREFIX = "evidently:metric_v2:"


def test_a_second_run_adds_no_panel_and_keeps_panels_added_by_hand(tmp_path: Path) -> None:
    # GIVEN a project whose dashboard the monitor set up, and a panel someone added by hand
    workspace = Workspace.create(str(tmp_path))
    project = workspace_project(workspace, "churn")
    own: DashboardPanelPlot = counter_panel(title="Mine", values=[PanelMetric(metric="RowCount")])
    project.dashboard.add_panel(own, tab="Hand-made")
    # WHEN the monitor looks the project up again, twice
    workspace_project(workspace, "churn")
    wrote_again = ensure_dashboard(workspace, project.id)
    # THEN the monitor's panels are there once each, in one tab, and the hand-made panel is kept
    dashboard = workspace.get_dashboard(project.id)
    titles = [p.title for p in dashboard.panels]
    assert sorted(titles) == sorted([*PANEL_TITLES, "Mine"])
    [tab] = [t for t in dashboard.tabs if t.title == TAB_TITLE]
    assert tab.panels == [p.id for p in monitor_panels()]
    assert any(own.id in t.panels for t in dashboard.tabs if t.title == "Hand-made")
    assert wrote_again is False


def test_panels_plot_the_metric_types_the_monitor_stores() -> None:
    metrics = {value.metric.removeprefix(METRIC_PREFIX) for panel in monitor_panels() for value in panel.values}
    assert metrics == {
        "DriftedColumnsCount",
        "TableColumnDrift",
        "ValueDrift",
        "F1Score",
        "Precision",
        "Recall",
        "Accuracy",
        "MeanValue",
    }
    assert all(panel.plot_params["plot_type"] == "line" for panel in monitor_panels())


def test_the_dashboard_url_names_the_project_on_the_configured_port(tmp_path: Path) -> None:
    settings = Settings(EVIDENTLY_WORKSPACE=str(tmp_path / "ws"), EVIDENTLY_PROJECT="churn", EVIDENTLY_UI_PORT="8123")
    url = project_dashboard_url(settings)
    [project] = Workspace.create(str(tmp_path / "ws")).search_project("churn")
    assert url == f"http://127.0.0.1:8123/projects/{project.id}"
    assert uuid.UUID(url.rsplit("/", 1)[1]) == project.id
    assert project_dashboard_url(settings) == url
