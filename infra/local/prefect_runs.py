"""Runs of the monitor deployment that an earlier local stack left unfinished: marked crashed at start-up.

Such a run holds the deployment's one concurrency slot, and the Prefect server keeps that slot's lease in
memory only, so after a restart nothing would ever release it and every new run would be cancelled. A run
the served deployment claims ahead of its scheduled time is pending, so a stack that stops almost always
leaves one.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from churn_common.settings import Settings

MONITOR_DEPLOYMENT_NAME = "batch-monitor"


def prefect_ui_url(settings: Settings) -> str:
    """The stack's Prefect server, whose root serves the UI (``PREFECT_UI_ENABLED`` in :mod:`infra.local.stack`)."""
    return f"http://127.0.0.1:{settings.local_prefect_port}"


def prefect_api_url(settings: Settings) -> str:
    return f"{prefect_ui_url(settings)}/api"


@contextmanager
def on_stack_server(settings: Settings) -> Iterator[None]:
    """Prefect clients made inside talk to the stack's server. Prefect reads its settings once, when it is
    first imported: in a process that imported it before the stack set ``PREFECT_API_URL`` (a test session,
    the chaos run), a client would otherwise start a temporary server of its own and talk to that."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: prefect_api_url(settings)}):
        yield


def release_stale_monitor_runs(started: datetime, *, deployment: str = MONITOR_DEPLOYMENT_NAME) -> int:
    """Marks crashed the deployment's runs left pending, running or cancelling before ``started``."""
    from prefect import get_client
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterName,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.states import Crashed

    unfinished = FlowRunFilterStateType(any_=[StateType.PENDING, StateType.RUNNING, StateType.CANCELLING])
    with get_client(sync_client=True) as prefect:
        runs = prefect.read_flow_runs(
            flow_run_filter=FlowRunFilter(state=FlowRunFilterState(type=unfinished)),
            deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=[deployment])),
        )
        stale = [run for run in runs if run.state is not None and run.state.timestamp < started]
        for run in stale:
            prefect.set_flow_run_state(run.id, Crashed(message="left unfinished by an earlier local stack"), force=True)
    return len(stale)
