"""What the monitor learnt about one window and model version: plain values, no Evidently, no I/O.

The window's figures are defined once, in :class:`WindowMetrics`: the evaluation
(:class:`WindowEvaluation`, with the per-column detail and the report) and the stored result
(:class:`WindowResult`, a row of ``monitoring_windows``) both carry them, and the flow's and the demo's
summaries derive from the result. Kept apart from the Evidently adapter so alert decisions and storage can
be reasoned about (and tested) without importing it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from enum import StrEnum
from typing import Any, Self

from batch_monitor.core.window import Window, as_utc

QUALITY_FIELDS: tuple[str, ...] = ("f1", "precision", "recall", "accuracy")
ESTIMATED_PREFIX = "estimated_"
# Confidence-based estimates (batch_monitor.evaluation.performance_estimation): the quality fields and ROC AUC.
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


@dataclass(frozen=True, slots=True, kw_only=True)
class WindowMetrics:
    """The figures of one window and model version, each ``None`` when it was not computed.

    ``estimated_*`` figures rest on the same rows as drift and need no labels; ``label_coverage`` says how
    many records the counted quality could rest on (it is only reported above ``MIN_LABEL_COVERAGE``).
    ``estimate_error`` is positive when the estimate promised more than the labels showed; ``estimate_stood``
    says whether anyone could have acted on that estimate (see :func:`estimate_stood`). ``agreement``,
    ``challenger_f1`` and ``challenger_estimated_f1`` are the shadow-scored challenger's
    (:mod:`batch_monitor.core.challenger`).
    """

    drift_share: float | None = None
    dataset_drift: bool | None = None
    f1: float | None = None
    precision: float | None = None
    recall: float | None = None
    accuracy: float | None = None
    estimated_f1: float | None = None
    estimated_precision: float | None = None
    estimated_recall: float | None = None
    estimated_accuracy: float | None = None
    estimated_roc_auc: float | None = None
    agreement: float | None = None
    challenger_f1: float | None = None
    challenger_estimated_f1: float | None = None
    # Labelled records / records: labels arrive later (batch_monitor.labels), so this grows as they join.
    label_coverage: float | None = None
    # estimated_f1 - f1 once both exist: how far the estimate was off.
    estimate_error: float | None = None
    # The window's quality rested on its estimate at some evaluation (labels came later than the scores).
    estimate_stood: bool | None = None

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

    def metrics(self) -> dict[str, float | bool | None]:
        """Every figure by its field name."""
        return {f.name: getattr(self, f.name) for f in fields(WindowMetrics)}


METRIC_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(WindowMetrics))


def estimate_stood(*, f1: float | None, estimated_f1: float | None, before: bool) -> bool:
    """Whether the window's quality rested on its estimate at this evaluation or an earlier one (``before``).

    Only then is a large estimate error news: the verdicts given on the estimate were wrong, and so may be
    those of windows still waiting for labels. A window labelled at scoring time never had its estimate
    stand; its error is stored and plotted, but nobody relied on it."""
    return before or (f1 is None and estimated_f1 is not None)


def f1_estimate_error(*, estimated_f1: float | None, f1: float | None) -> float | None:
    """The estimate's error against the realised F1 (``None`` until both exist)."""
    if estimated_f1 is None or f1 is None:
        return None
    return estimated_f1 - f1


@dataclass(frozen=True, slots=True)
class WindowEvaluation(WindowMetrics):
    """What the monitor learnt about one window and model version (``html`` is the Evidently report).

    ``n_drift_rows`` is how many of the ``n_rows`` records the drift scores rest on: all of them, or the
    uniform sample of a large window. Row counts and quality are always over all records.
    """

    window: Window
    model_version: str
    status: EvaluationStatus
    n_rows: int
    n_labelled: int = 0
    n_drift_rows: int | None = None
    columns: tuple[ColumnDrift, ...] = ()
    prediction_drift: ColumnDrift | None = None
    challenger_version: str | None = None
    html: str | None = field(default=None, repr=False)
    # The Evidently runs behind ``html``, for the local workspace (batch_monitor.reports.workspace).
    snapshots: tuple[Any, ...] = field(default=(), repr=False, compare=False)

    @property
    def drifted_columns(self) -> tuple[ColumnDrift, ...]:
        return tuple(c for c in self.columns if c.drifted)

    @property
    def drift_sampled(self) -> bool:
        return self.n_drift_rows is not None and self.n_drift_rows < self.n_rows


@dataclass(frozen=True, slots=True, kw_only=True)
class WindowResult(WindowMetrics):
    """The stored result of one window and model version: a row of ``monitoring_windows`` (its columns are
    these fields and ``evaluated_at``)."""

    window_start: datetime
    window_end: datetime
    model_version: str
    status: str
    n_rows: int
    prediction_drift_score: float | None = None
    report_uri: str | None = None
    challenger_version: str | None = None

    @classmethod
    def of(cls, evaluation: WindowEvaluation, *, report_uri: str | None) -> WindowResult:
        prediction = evaluation.prediction_drift
        return cls(
            window_start=evaluation.window.start,
            window_end=evaluation.window.end,
            model_version=evaluation.model_version,
            status=str(evaluation.status),
            n_rows=evaluation.n_rows,
            prediction_drift_score=None if prediction is None else prediction.score,
            report_uri=report_uri,
            challenger_version=evaluation.challenger_version,
            **evaluation.metrics(),
        )

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Self:
        """From a ``monitoring_windows`` row (or any mapping holding its columns); times as UTC."""
        values = {f.name: row[f.name] for f in fields(WindowResult)}
        return cls(
            **{**values, "window_start": as_utc(values["window_start"]), "window_end": as_utc(values["window_end"])}
        )

    def row(self) -> dict[str, Any]:
        """The ``monitoring_windows`` columns but ``evaluated_at``."""
        return {f.name: getattr(self, f.name) for f in fields(WindowResult)}


RESULT_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(WindowResult))
