"""``python -m batch_monitor.serve``: serve the flow as deployment ``batch-monitor`` on an interval.

Schedules need a real Prefect server (``prefect server start``) and ``PREFECT_API_URL`` pointing at it: the
temporary server Prefect starts on its own cannot schedule, so serving against it would silently never run.
This refuses to start without one. The interval (``MONITOR_SCHEDULE_SECONDS``) defaults to the window
length, so each run finds about one newly closed window.
"""

from __future__ import annotations

import sys

from batch_monitor.flow import FLOW_NAME, monitor_windows
from churn_common.settings import Settings, get_settings

DEPLOYMENT_NAME = FLOW_NAME
# One run at a time; a run that would overlap is dropped, the next one catches up anyway.
CONCURRENCY_LIMIT = 1


def schedule_seconds(settings: Settings) -> float:
    return settings.monitor_schedule_seconds or float(settings.window_seconds)


def main() -> int:
    from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
    from prefect.settings import get_current_settings

    if not get_current_settings().api.url:
        print("PREFECT_API_URL is not set: start `prefect server start` and point it there", file=sys.stderr)
        return 2
    monitor_windows.serve(
        name=DEPLOYMENT_NAME,
        interval=schedule_seconds(get_settings()),
        global_limit=ConcurrencyLimitConfig(
            limit=CONCURRENCY_LIMIT, collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW
        ),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
