"""Evidently reports: static HTML objects in the pipeline's bucket, linked from the tables and alerts, and
each window's snapshots in a local Evidently workspace that ``evidently ui`` browses (``make evidently-ui``),
whose project dashboard plots them per window (:mod:`batch_monitor.reports.dashboard`).

A snapshot's id in the workspace is derived from its window, model version and slot, so evaluating a
window again replaces its snapshots instead of adding copies, and removes a run the new evaluation no longer
has (a window whose labels arrived is reported in one run where it had two). The monitor's own figures of
the window (:mod:`batch_monitor.reports.window_figures`) have a slot of their own.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from batch_monitor.core import Window, WindowEvaluation
from batch_monitor.reports.window_figures import figures_run
from churn_common.settings import EVIDENTLY_UI_HOST, Settings, get_settings

HTML_CONTENT_TYPE = "text/html"
PROJECT_DESCRIPTION = "Churn model: data drift and classification quality per monitoring window and model version"
# Namespace of the snapshot ids (any fixed UUID; changing it would duplicate every stored window).
SNAPSHOT_NAMESPACE = uuid.UUID("5d0f1f1e-8c1b-4b8e-9a57-6c3f0c1d2e4a")
# An evaluation has at most this many Evidently runs (drift, quality); the figures run comes after them.
MAX_EVALUATION_RUNS = 4
FIGURES_SLOT = MAX_EVALUATION_RUNS


def report_key(*, prefix: str, window: Window, model_version: str) -> str:
    """``reports/2026-11-26T06:50:00Z_3.html``: sorts by time, one object per window and version."""
    return f"{prefix}{window.label}_{model_version}.html"


def upload_report(html: str, *, s3: Any, bucket: str, prefix: str, window: Window, model_version: str) -> str:
    """Store (or replace, on a re-run) the report and return its ``s3://`` URI."""
    key = report_key(prefix=prefix, window=window, model_version=model_version)
    s3.put_object(Bucket=bucket, Key=key, Body=html.encode("utf-8"), ContentType=HTML_CONTENT_TYPE)
    return f"s3://{bucket}/{key}"


def snapshot_id(*, window: Window, model_version: str, index: int) -> uuid.UUID:
    return uuid.uuid5(SNAPSHOT_NAMESPACE, f"{window.label}/{model_version}/{index}")


def workspace_project(workspace: Any, name: str) -> Any:
    """The project called ``name``, created on first use, with the monitor's dashboard panels."""
    from batch_monitor.reports.dashboard import ensure_dashboard

    project = next((p for p in workspace.search_project(name) if p.name == name), None)
    if project is None:
        project = workspace.create_project(name, description=PROJECT_DESCRIPTION)
    ensure_dashboard(workspace, project.id)
    return project


def project_dashboard_url(settings: Settings) -> str:
    """The project's dashboard in the local Evidently UI. The project is created here when missing, so the
    link (its id is drawn at creation) holds before the monitor stores a window and after."""
    from evidently.ui.workspace import Workspace

    folder = settings.resolved_evidently_workspace
    folder.mkdir(parents=True, exist_ok=True)
    project = workspace_project(Workspace.create(str(folder)), settings.evidently_project)
    return f"{settings.evidently_ui_url}/projects/{project.id}"


def add_to_workspace(
    snapshots: Sequence[Any],
    *,
    workspace: Path,
    project_name: str,
    window: Window,
    model_version: str,
    figures: Any | None = None,
) -> list[str]:
    """Put a window's Evidently runs (``Report.run`` results) and its figures run into the workspace; returns
    the ids written.

    Each run is stamped with the window's start as its time and the window and version as metadata and
    tags, so the UI orders and filters runs by window, not by when the monitor happened to compute them.
    """
    from evidently.ui.workspace import Workspace

    if len(snapshots) > MAX_EVALUATION_RUNS:
        raise ValueError(f"{len(snapshots)} runs for one window; at most {MAX_EVALUATION_RUNS} have a slot")
    workspace.mkdir(parents=True, exist_ok=True)
    store = Workspace.create(str(workspace))
    project = workspace_project(store, project_name)
    label = f"{window.label} v{model_version}"
    named = {
        index: (snapshot, label + (f" ({index + 1})" if len(snapshots) > 1 else ""))
        for index, snapshot in enumerate(snapshots)
    }
    if figures is not None:
        named[FIGURES_SLOT] = (figures, f"{label} (figures)")
    existing = _stored_runs(store, project.id)
    stored = []
    for slot in range(FIGURES_SLOT + 1):
        key = snapshot_id(window=window, model_version=model_version, index=slot)
        if slot not in named:
            if str(key) in existing:
                store.state.delete_snapshot(project.id, key)
            continue
        snapshot, name = named[slot]
        model = snapshot.to_snapshot_model()
        model = model.copy(
            update={
                "name": name,
                "timestamp": window.start,
                "metadata": {
                    **model.metadata,
                    "window_start": window.start.isoformat(),
                    "window_end": window.end.isoformat(),
                    "model_version": model_version,
                },
                "tags": [*model.tags, f"model_version={model_version}"],
            }
        )
        # The public add_run always draws a fresh id; writing under a derived id makes a re-run replace.
        store.state.write_snapshot(project.id, key, model)
        stored.append(str(key))
    return stored


def _stored_runs(store: Any, project_id: uuid.UUID) -> set[str]:
    try:
        return {str(run) for run in store.state.list_snapshots(project_id)}
    except FileNotFoundError:  # a new project has no snapshot folder yet
        return set()


def add_evaluation_to_workspace(
    evaluation: WindowEvaluation, *, crossed: Mapping[str, bool] | None = None, settings: Settings | None = None
) -> list[str]:
    """The monitor's hook: a window evaluation's runs and figures into the configured workspace (nothing for
    a window that was not tested, or with ``EVIDENTLY_WORKSPACE_ENABLED`` off); ``crossed``: the window's alert
    verdicts (kind: crossed or clear)."""
    settings = settings or get_settings()
    if not evaluation.snapshots or not settings.evidently_workspace_enabled:
        return []
    return add_to_workspace(
        evaluation.snapshots,
        workspace=settings.resolved_evidently_workspace,
        project_name=settings.evidently_project,
        window=evaluation.window,
        model_version=evaluation.model_version,
        figures=figures_run(evaluation, crossed=crossed),
    )


def ui_command(settings: Settings, *, port: int | None = None) -> list[str]:
    """``evidently ui`` on the monitor's workspace, on the loopback interface only."""
    executable = Path(sys.executable).with_name("evidently")
    return [
        str(executable),
        "ui",
        "--workspace",
        str(settings.resolved_evidently_workspace),
        "--host",
        EVIDENTLY_UI_HOST,
        "--port",
        str(port or settings.evidently_ui_port),
    ]


def main() -> None:
    """``make evidently-ui``: the workspace and the project (with its dashboard) are created when missing, so
    the UI starts on an empty one too and shows windows as the monitor adds them."""
    from evidently.ui.workspace import Workspace

    os.environ.setdefault("DO_NOT_TRACK", "1")
    settings = get_settings()
    settings.resolved_evidently_workspace.mkdir(parents=True, exist_ok=True)
    workspace_project(Workspace.create(str(settings.resolved_evidently_workspace)), settings.evidently_project)
    command = ui_command(settings)
    print(f"Evidently UI on {settings.evidently_ui_url} (workspace {settings.resolved_evidently_workspace})")
    os.execv(command[0], command)


if __name__ == "__main__":
    main()
