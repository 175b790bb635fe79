"""Where reports and workspace snapshots go, and how ``make evidently-ui`` is started."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from batch_monitor.core import Window
from batch_monitor.reports.workspace import report_key, snapshot_id, ui_command
from churn_common.settings import Settings

WINDOW = Window(datetime(2026, 11, 26, 6, 50, tzinfo=UTC), datetime(2026, 11, 26, 6, 55, tzinfo=UTC))


def test_report_key_sorts_by_window_and_names_the_version() -> None:
    assert report_key(prefix="reports/", window=WINDOW, model_version="3") == "reports/2026-11-26T06:50:00Z_3.html"


def test_snapshot_ids_are_stable_per_window_version_and_position() -> None:
    # A re-evaluated window gets the same ids (its runs are replaced), anything else another id.
    same = snapshot_id(window=WINDOW, model_version="3", index=0)
    assert snapshot_id(window=WINDOW, model_version="3", index=0) == same
    later = Window(WINDOW.end, WINDOW.end + timedelta(minutes=5))
    others = {
        snapshot_id(window=WINDOW, model_version="3", index=1),
        snapshot_id(window=WINDOW, model_version="4", index=0),
        snapshot_id(window=later, model_version="3", index=0),
    }
    assert same not in others
    assert len(others) == 3


def test_ui_serves_the_configured_workspace_on_loopback(tmp_path: Path) -> None:
    settings = Settings(EVIDENTLY_WORKSPACE=str(tmp_path / "ws"), EVIDENTLY_UI_PORT="8123")
    command = ui_command(settings)
    assert Path(command[0]).name == "evidently"
    assert command[1:] == ["ui", "--workspace", str(tmp_path / "ws"), "--host", "127.0.0.1", "--port", "8123"]
    assert ui_command(settings, port=9000)[-1] == "9000"


def test_workspace_defaults_to_the_local_state_folder(tmp_path: Path) -> None:
    assert Settings(LOCAL_STATE_DIR=str(tmp_path)).resolved_evidently_workspace == tmp_path / "evidently"
