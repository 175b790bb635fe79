"""``make demo`` ends with where to watch: the Prefect UI of the stack's server and the Evidently dashboard."""

from __future__ import annotations

from pathlib import Path

from evidently.ui.workspace import Workspace

from churn_common.settings import Settings
from infra.local.ui_links import EVIDENTLY_COMMAND, STACK_COMMAND, watch_lines


def test_the_lines_name_each_ui_its_url_and_the_command_that_serves_it(tmp_path: Path) -> None:
    settings = Settings(
        LOCAL_STATE_DIR=str(tmp_path), LOCAL_PREFECT_PORT="4321", EVIDENTLY_UI_PORT="8765", EVIDENTLY_PROJECT="churn"
    )
    prefect, evidently = watch_lines(settings)
    [project] = Workspace.create(str(tmp_path / "evidently")).search_project("churn")
    assert "http://127.0.0.1:4321," in prefect
    assert f"`{STACK_COMMAND}`" in prefect
    assert f"`{EVIDENTLY_COMMAND}`" in evidently
    assert evidently.endswith(f"http://127.0.0.1:8765/projects/{project.id}")
