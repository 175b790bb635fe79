"""Runs of the monitor deployment that an earlier local stack left unfinished: marked crashed at start-up.

Such a run holds the deployment's one concurrency slot, and the Prefect server keeps that slot's lease in
memory only, so after a restart nothing would ever release it and every new run would be cancelled. A run
the served deployment claims ahead of its scheduled time is pending, so a stack that stops almost always
leaves one.
"""

from __future__ import annotations

from datetime import datetime

MONITOR_DEPLOYMENT_NAME = "batch-monitor"


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
