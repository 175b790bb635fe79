"""The Evidently UI project's dashboard: the monitor's figures per window, plotted from the stored snapshots.

Each panel names metrics exactly as the monitor's runs store them (:mod:`batch_monitor.evaluation.drift`):
``DriftedColumnsCount`` (its ``share`` value), one ``TableColumnDrift`` per feature, ``ValueDrift`` of the
churn probability, and the classification preset's ``F1Score``, ``Precision``, ``Recall`` and ``Accuracy``;
label coverage, realised against estimated F1, the estimate's error and the challenger's figures come from
the window's figures run (:mod:`batch_monitor.reports.window_figures`), one ``MeanValue`` per figure.
Alerts per window are the window's verdicts (1 crossed, 0 clear) from the same figures run; whether a
crossing was e-mailed or held back is the alert ledger's, in the database.

Panels and their tab have ids derived from their titles, and :func:`ensure_dashboard` replaces the monitor's
panels in place, so every monitor run may call it and the dashboard never grows copies; panels someone
added by hand are kept.
"""

from __future__ import annotations

import uuid
from typing import Any

from evidently.sdk.models import DashboardModel, DashboardPanelPlot, DashboardTabModel, PanelMetric
from evidently.sdk.panels import line_plot_panel

from batch_monitor.alerting.rules import WINDOW_KINDS
from batch_monitor.reports.window_figures import ALERT_PREFIX, FIGURES_METRIC
from churn_common.registry import PROBABILITY_COLUMN

# Namespace of the panel and tab ids (any fixed UUID; changing it would leave the old panels beside new ones).
DASHBOARD_NAMESPACE = uuid.UUID("0b6f4a52-93c1-4f5e-8d1e-2f7c5b9e6a31")
TAB_TITLE = "Monitoring windows"
DRIFT_SHARE_TITLE = "Share of drifted columns per window"
COLUMN_DRIFT_TITLE = "Drift score per column and of the churn probability (Wasserstein, reference std devs)"
QUALITY_TITLE = "Classification quality per window (labelled windows)"
LABELS_TITLE = "Label coverage, realised and estimated F1 per window"
ESTIMATE_ERROR_TITLE = "Estimate error per window (estimated minus realised F1)"
CHALLENGER_TITLE = "Champion vs challenger per window (shadow-scored records)"
ALERTS_TITLE = "Alerts per window (1: the kind's line was crossed)"
PANEL_TITLES: tuple[str, ...] = (
    DRIFT_SHARE_TITLE,
    QUALITY_TITLE,
    LABELS_TITLE,
    ESTIMATE_ERROR_TITLE,
    CHALLENGER_TITLE,
    ALERTS_TITLE,
    COLUMN_DRIFT_TITLE,
)
HALF, FULL = "half", "full"
# The legend template Evidently fills with each series' ``column`` label.
COLUMN_LEGEND = "{{column}}"


def _id(title: str) -> uuid.UUID:
    return uuid.uuid5(DASHBOARD_NAMESPACE, title)


def _panel(title: str, values: list[PanelMetric], *, size: str) -> DashboardPanelPlot:
    panel = line_plot_panel(title=title, values=values, size=size)
    return panel.copy(update={"id": _id(title)})


def _figure(legend: str, name: str) -> PanelMetric:
    return PanelMetric(legend=legend, metric=FIGURES_METRIC, metric_labels={"column": name})


def monitor_panels() -> list[DashboardPanelPlot]:
    """The monitor's panels, in the order the tab shows them."""
    return [
        _panel(
            DRIFT_SHARE_TITLE,
            [PanelMetric(legend="drifted share", metric="DriftedColumnsCount", metric_labels={"value_type": "share"})],
            size=HALF,
        ),
        _panel(
            QUALITY_TITLE,
            [
                PanelMetric(legend="F1", metric="F1Score"),
                PanelMetric(legend="precision", metric="Precision"),
                PanelMetric(legend="recall", metric="Recall"),
                PanelMetric(legend="accuracy", metric="Accuracy"),
            ],
            size=HALF,
        ),
        _panel(
            LABELS_TITLE,
            [
                _figure("label coverage", "label_coverage"),
                _figure("realised F1", "f1"),
                _figure("estimated F1", "estimated_f1"),
            ],
            size=HALF,
        ),
        _panel(ESTIMATE_ERROR_TITLE, [_figure("estimate error", "estimate_error")], size=HALF),
        _panel(
            CHALLENGER_TITLE,
            [
                _figure("champion F1", "f1"),
                _figure("champion estimated F1", "estimated_f1"),
                _figure("challenger F1", "challenger_f1"),
                _figure("challenger estimated F1", "challenger_estimated_f1"),
                _figure("agreement", "agreement"),
            ],
            size=HALF,
        ),
        _panel(ALERTS_TITLE, [_figure(str(kind), f"{ALERT_PREFIX}{kind}") for kind in WINDOW_KINDS], size=HALF),
        _panel(
            COLUMN_DRIFT_TITLE,
            [
                PanelMetric(legend=COLUMN_LEGEND, metric="TableColumnDrift"),
                PanelMetric(legend=COLUMN_LEGEND, metric="ValueDrift", metric_labels={"column": PROBABILITY_COLUMN}),
            ],
            size=FULL,
        ),
    ]


def with_monitor_panels(dashboard: DashboardModel) -> DashboardModel:
    """``dashboard`` with the monitor's tab and panels as :func:`monitor_panels` defines them, other panels kept."""
    panels = monitor_panels()
    ours = {panel.id for panel in panels}
    tab = DashboardTabModel(id=_id(TAB_TITLE), title=TAB_TITLE, panels=[panel.id for panel in panels])
    return DashboardModel(
        tabs=[tab, *(t for t in dashboard.tabs if t.id != tab.id)],
        panels=[*panels, *(p for p in dashboard.panels if p.id not in ours)],
    )


def ensure_dashboard(workspace: Any, project_id: uuid.UUID) -> bool:
    """Give the project the monitor's panels; writes only when they differ (returns whether it wrote)."""
    current = workspace.get_dashboard(project_id)
    wanted = with_monitor_panels(current)
    if wanted.dict() == current.dict():
        return False
    workspace.save_dashboard(project_id, wanted)
    return True
