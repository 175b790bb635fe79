"""The small values every group of the monitor shares: windows, evaluations and their stored results,
confusion counts and the thresholds. Nothing here does I/O or imports another group."""

from batch_monitor.core.evaluation import (
    ColumnDrift,
    EvaluationStatus,
    WindowEvaluation,
    WindowMetrics,
    WindowResult,
)
from batch_monitor.core.quality import WindowCounts
from batch_monitor.core.thresholds import Thresholds
from batch_monitor.core.window import Window, as_utc

__all__ = [
    "ColumnDrift",
    "EvaluationStatus",
    "Thresholds",
    "Window",
    "WindowCounts",
    "WindowEvaluation",
    "WindowMetrics",
    "WindowResult",
    "as_utc",
]
