"""``python -m batch_monitor.reports`` (``make evidently-ui``): the Evidently UI on the monitor's workspace."""

from batch_monitor.reports.workspace import main

main()
