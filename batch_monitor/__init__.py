"""Scheduled monitor: per closed time window, drift and quality of the stored predictions, their storage for
the dashboards, alert e-mails and, when asked for, retraining.

Groups by role (``window_data``, ``evaluation``, ``alerting``, ``early_warning``, ``retraining``, ``reports``)
over a small ``core``; ``flow`` and ``serve`` compose them.
"""

from churn_common.public_api import lazy_exports

_EXPORTS = {
    "E_MAILED": "batch_monitor.alerting.ledger",
    "RetrainingPolicy": "batch_monitor.retraining.decision",
    "RunStatus": "batch_monitor.retraining.ledger",
    "Window": "batch_monitor.core",
    "WindowResult": "batch_monitor.core",
    "as_utc": "batch_monitor.core",
    "bucket_expression": "batch_monitor.window_data.windows",
    "decide_retraining": "batch_monitor.retraining.decision",
    "due_retraining": "batch_monitor.retraining.due",
    "monitor_windows": "batch_monitor.flow",
    "project_dashboard_url": "batch_monitor.reports.workspace",
    "quality_history": "batch_monitor.retraining.data",
    "read_runs": "batch_monitor.retraining.ledger",
}
__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
