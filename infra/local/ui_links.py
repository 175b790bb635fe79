"""Where to watch the local pipeline: the two UIs and the commands that serve them, as ``make demo`` ends.

The demo's stack stops with the demo, so each line names how to serve the UI again on the same state: the
Prefect server (with its UI) runs with the stack, the Evidently UI on its own.
"""

from __future__ import annotations

from churn_common.settings import Settings
from infra.local.prefect_runs import prefect_ui_url

STACK_COMMAND = "make stack"
EVIDENTLY_COMMAND = "make evidently-ui"


def watch_lines(settings: Settings) -> list[str]:
    """One line per UI: what it shows, its URL, the command that serves it."""
    from batch_monitor import project_dashboard_url

    return [
        f"Prefect UI (monitor deployment, flow runs): {prefect_ui_url(settings)}, served while `{STACK_COMMAND}` runs",
        f"Evidently UI (drift and quality per window): `{EVIDENTLY_COMMAND}`, then {project_dashboard_url(settings)}",
    ]
