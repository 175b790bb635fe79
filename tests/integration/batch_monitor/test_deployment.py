"""The deployment definitions point at the flow that is tested, with the documented schedule."""

from __future__ import annotations

import pytest
import yaml
from prefect.flows import load_flow_from_entrypoint

from batch_monitor.flow import monitor_windows
from batch_monitor.serve import DEPLOYMENT_NAME, schedule_seconds
from churn_common.settings import Settings
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.integration

PREFECT_FILE = REPO_ROOT / "batch_monitor" / "prefect.yaml"


def test_prefect_yaml_declares_the_batch_monitor_deployment_of_this_flow() -> None:
    # GIVEN the deployment file
    [deployment] = yaml.safe_load(PREFECT_FILE.read_text())["deployments"]
    # THEN its entrypoint (relative to the repository root) loads this very flow, on a schedule
    entrypoint = deployment["entrypoint"]
    path, _, name = entrypoint.partition(":")
    assert (REPO_ROOT / path).is_file()
    loaded = load_flow_from_entrypoint(f"{REPO_ROOT / path}:{name}")
    assert loaded.name == monitor_windows.name == deployment["name"] == DEPLOYMENT_NAME == "batch-monitor"
    assert deployment["schedules"]
    assert all(s.get("cron") or s.get("interval") for s in deployment["schedules"])
    assert deployment["concurrency_limit"] == {"limit": 1, "collision_strategy": "CANCEL_NEW"}


def test_served_interval_defaults_to_the_window_length() -> None:
    assert schedule_seconds(Settings(MONITOR_WINDOW_SECONDS="600")) == 600
    assert schedule_seconds(Settings(MONITOR_WINDOW_SECONDS="600", MONITOR_SCHEDULE_SECONDS="60")) == 60


def test_serving_refuses_to_start_without_a_prefect_server(monkeypatch: pytest.MonkeyPatch, capsys) -> None:  # type: ignore[no-untyped-def]
    from batch_monitor import serve

    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    with __import__("prefect").settings.temporary_settings(updates={"PREFECT_API_URL": None}):
        assert serve.main() == 2
    assert "PREFECT_API_URL" in capsys.readouterr().err
