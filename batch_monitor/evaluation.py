"""What the monitor learnt about one window and model version: plain values, no Evidently, no I/O.

Kept apart from the Evidently adapter so alert decisions and storage can be reasoned about (and tested)
without importing it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from batch_monitor.windows import Window

QUALITY_FIELDS: tuple[str, ...] = ("f1", "precision", "recall", "accuracy")
ESTIMATED_PREFIX = "estimated_"
# Confidence-based estimates (batch_monitor.performance_estimation): the quality fields and ROC AUC.
ESTIMATED_FIELDS: tuple[str, ...] = tuple(f"{ESTIMATED_PREFIX}{name}" for name in (*QUALITY_FIELDS, "roc_auc"))


class EvaluationStatus(StrEnum):
    EVALUATED = "evaluated"
    TOO_FEW_ROWS = "too_few_rows"


@dataclass(frozen=True, slots=True)
class ColumnDrift:
    column: str
    method: str
    score: float
    threshold: float
    drifted: bool


@dataclass(frozen=True, slots=True)
class WindowEvaluation:
    """What the monitor learnt about one window and model version (``html`` is the Evidently report).

    ``n_drift_rows`` is how many of the ``n_rows`` records the drift scores rest on: all of them, or the
    uniform sample of a large window. Row counts and quality are always over all records. The ``estimated_*``
    figures rest on the same rows as drift and need no labels.
    """

    window: Window
    model_version: str
    status: EvaluationStatus
    n_rows: int
    n_labelled: int = 0
    n_drift_rows: int | None = None
    columns: tuple[ColumnDrift, ...] = ()
    drift_share: float | None = None
    dataset_drift: bool | None = None
    prediction_drift: ColumnDrift | None = None
    f1: float | None = None
    precision: float | None = None
    recall: float | None = None
    accuracy: float | None = None
    estimated_f1: float | None = None
    estimated_precision: float | None = None
    estimated_recall: float | None = None
    estimated_accuracy: float | None = None
    estimated_roc_auc: float | None = None
    html: str | None = field(default=None, repr=False)
    # The Evidently runs behind ``html``, for the local workspace (batch_monitor.reports.add_to_workspace).
    snapshots: tuple[Any, ...] = field(default=(), repr=False, compare=False)

    @property
    def drifted_columns(self) -> tuple[ColumnDrift, ...]:
        return tuple(c for c in self.columns if c.drifted)

    @property
    def drift_sampled(self) -> bool:
        return self.n_drift_rows is not None and self.n_drift_rows < self.n_rows

    @property
    def quality(self) -> dict[str, float]:
        """The classification metrics that could be computed (empty without enough labels)."""
        values = {name: getattr(self, name) for name in QUALITY_FIELDS}
        return {name: value for name, value in values.items() if value is not None}

    @property
    def estimated_quality(self) -> dict[str, float]:
        """The estimated metrics by their plain names (``f1``, ..., ``roc_auc``); empty when not estimated."""
        values = {name.removeprefix(ESTIMATED_PREFIX): getattr(self, name) for name in ESTIMATED_FIELDS}
        return {name: value for name, value in values.items() if value is not None}
