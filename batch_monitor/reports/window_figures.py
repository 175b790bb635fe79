"""The monitor's own figures of a window as an Evidently run, so the UI's dashboard can plot them.

Label coverage, the estimate's error and the shadow-scored challenger's figures come from the database, not
from an Evidently metric, and the local UI plots only what its runs hold. Each figure becomes a one-row
column whose ``MeanValue`` is the figure itself: a plain Evidently run, no custom metric class for the UI to
know. A figure that is not known for the window is left out, so its line has a gap there instead of a zero.
The window's alert verdicts come along as ``alert_<kind>`` columns: 1 when the kind's line was crossed, 0
when it was clear, left out when it could not be judged.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from batch_monitor.core import WindowMetrics

FIGURES_METRIC = "MeanValue"
ALERT_PREFIX = "alert_"
# Plotted per window; every name is a WindowMetrics field.
PLOTTED_FIGURES: tuple[str, ...] = (
    "label_coverage",
    "f1",
    "estimated_f1",
    "estimate_error",
    "challenger_f1",
    "challenger_estimated_f1",
    "agreement",
)


def figures_run(metrics: WindowMetrics, *, crossed: Mapping[str, bool] | None = None) -> Any | None:
    """An Evidently run holding the window's known figures; ``None`` when none is known. ``crossed``: per
    alert kind judged in the window, whether its line was crossed."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import MeanValue

    known = {name: float(value) for name in PLOTTED_FIGURES if (value := getattr(metrics, name)) is not None}
    known.update({f"{ALERT_PREFIX}{kind}": float(hit) for kind, hit in (crossed or {}).items()})
    if not known:
        return None
    frame = pd.DataFrame([known])
    data = Dataset.from_pandas(frame, data_definition=DataDefinition(numerical_columns=list(known)))
    return Report([MeanValue(column=name) for name in known]).run(current_data=data, reference_data=None)
