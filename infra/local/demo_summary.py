"""The demo's summary, printed and written to ``.local/demo-summary.json``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, computed_field

from batch_monitor import WindowResult


class FileSummary(BaseModel):
    name: str
    status: str
    rows: int
    sent: int
    rejected: int
    repeat: bool = False  # an identical file was dropped before: its records were already stored


@dataclass(frozen=True, slots=True, kw_only=True)
class WindowSummary(WindowResult):
    """A ``monitoring_windows`` row as the demo reports it: every field of the monitor's
    :class:`~batch_monitor.core.WindowResult` (``WindowSummary.from_row``)."""

    @property
    def start(self) -> datetime:
        return self.window_start

    @property
    def end(self) -> datetime:
        return self.window_end

    @property
    def rows(self) -> int:
        return self.n_rows


class AlertSummary(BaseModel):
    kind: str
    window_start: datetime
    subject: str


class RetrainingSummary(BaseModel):
    serving_version: str
    last_window_end: datetime
    status: str
    challenger_version: str | None
    challenger_f1: float | None
    serving_f1: float | None
    reason: str | None


class LabelsLaterSummary(BaseModel):
    """A file dropped without its labels: its window's figures per model version before its label file was
    dropped (estimate only) and after the monitor joined the labels (realised quality beside the estimate)."""

    file: str
    labels_key: str
    labels: int
    before: list[WindowSummary]
    after: list[WindowSummary]


class DemoSummary(BaseModel):
    rows_in: int
    records_scored: int
    rejected: int
    duplicates: int
    files: list[FileSummary]
    windows: list[WindowSummary]
    alerts: list[AlertSummary]
    retraining: list[RetrainingSummary] = []
    labels_later: list[LabelsLaterSummary] = []

    @computed_field  # type: ignore[prop-decorator]
    @property
    def invariant_holds(self) -> bool:
        """Every input row is either scored exactly once or rejected with a reason."""
        return self.rows_in == self.records_scored + self.rejected
