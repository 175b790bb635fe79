"""A window's results in the monitoring tables: one summary row per window and model version, plus one
row per metric (and column) for dashboards. Re-evaluating a window replaces its rows atomically.

Estimated quality is stored under its own names (``estimated_f1``, ...), next to the counted quality when
labels exist, so a dashboard can show both and how far apart they are."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, delete, select

from batch_monitor.core.evaluation import (
    ESTIMATED_FIELDS,
    EvaluationStatus,
    WindowEvaluation,
    WindowResult,
    estimate_stood,
)
from batch_monitor.core.window import Window
from churn_common.database import monitoring_metrics, monitoring_windows


def _drift_metrics(evaluation: WindowEvaluation) -> Iterator[tuple[str, str | None, float | None]]:
    if evaluation.n_drift_rows is not None:
        yield "n_drift_rows", None, float(evaluation.n_drift_rows)
    for column in evaluation.columns:
        yield "column_drift", column.column, column.score
        yield "column_drifted", column.column, float(column.drifted)
    yield "drift_share", None, evaluation.drift_share
    yield "drifted_columns", None, float(len(evaluation.drifted_columns))
    yield "dataset_drift", None, None if evaluation.dataset_drift is None else float(evaluation.dataset_drift)
    if evaluation.prediction_drift is not None:
        yield "prediction_drift", evaluation.prediction_drift.column, evaluation.prediction_drift.score


def _quality_metrics(evaluation: WindowEvaluation) -> Iterator[tuple[str, str | None, float | None]]:
    for name, value in evaluation.quality.items():
        yield name, None, value


def _estimated_metrics(evaluation: WindowEvaluation) -> Iterator[tuple[str, str | None, float | None]]:
    for name in (*ESTIMATED_FIELDS, "estimate_error"):
        value = getattr(evaluation, name)
        if value is not None:
            yield name, None, value


def _challenger_metrics(evaluation: WindowEvaluation) -> Iterator[tuple[str, str | None, float | None]]:
    for name in ("agreement", "challenger_f1", "challenger_estimated_f1"):
        value = getattr(evaluation, name)
        if value is not None:
            yield name, None, value


def _row_counts(evaluation: WindowEvaluation) -> Iterator[tuple[str, str | None, float | None]]:
    yield "n_rows", None, float(evaluation.n_rows)
    yield "n_labelled", None, float(evaluation.n_labelled)
    if evaluation.label_coverage is not None:
        yield "label_coverage", None, evaluation.label_coverage


MetricRows = Callable[[WindowEvaluation], Iterator[tuple[str, str | None, float | None]]]
_METRICS_BY_STATUS: Mapping[EvaluationStatus, tuple[MetricRows, ...]] = {
    EvaluationStatus.EVALUATED: (
        _row_counts,
        _drift_metrics,
        _quality_metrics,
        _estimated_metrics,
        _challenger_metrics,
    ),
    EvaluationStatus.TOO_FEW_ROWS: (_row_counts,),
}


def metric_rows(evaluation: WindowEvaluation) -> list[dict[str, Any]]:
    key = {
        "window_start": evaluation.window.start,
        "window_end": evaluation.window.end,
        "model_version": evaluation.model_version,
    }
    return [
        {**key, "metric": metric, "column": column, "value": value}
        for produce in _METRICS_BY_STATUS[evaluation.status]
        for metric, column, value in produce(evaluation)
    ]


def window_row(result: WindowResult, *, evaluated_at: datetime) -> dict[str, Any]:
    """The ``monitoring_windows`` row: the result's fields and when it was evaluated."""
    return {**result.row(), "evaluated_at": evaluated_at}


def estimate_stood_before(engine: Engine, *, window: Window, model_version: str) -> bool:
    """Whether the stored evaluation of ``window`` and ``model_version`` (if any) rested on the estimate, or
    said an earlier one did."""
    query = select(
        monitoring_windows.c.estimate_stood, monitoring_windows.c.f1, monitoring_windows.c.estimated_f1
    ).where(monitoring_windows.c.window_start == window.start, monitoring_windows.c.model_version == model_version)
    with engine.connect() as connection:
        row = connection.execute(query).one_or_none()
    return row is not None and estimate_stood(f1=row.f1, estimated_f1=row.estimated_f1, before=bool(row.estimate_stood))


def store_evaluation(
    engine: Engine, evaluation: WindowEvaluation, *, report_uri: str | None, evaluated_at: datetime
) -> WindowResult:
    """Delete and insert in one transaction, so readers never see a half-replaced window; returns the stored
    result."""
    result = WindowResult.of(evaluation, report_uri=report_uri)
    start, version = evaluation.window.start, evaluation.model_version
    with engine.begin() as connection:
        connection.execute(
            delete(monitoring_metrics).where(
                monitoring_metrics.c.window_start == start, monitoring_metrics.c.model_version == version
            )
        )
        connection.execute(
            delete(monitoring_windows).where(
                monitoring_windows.c.window_start == start, monitoring_windows.c.model_version == version
            )
        )
        connection.execute(monitoring_windows.insert(), window_row(result, evaluated_at=evaluated_at))
        rows = metric_rows(evaluation)
        if rows:
            connection.execute(monitoring_metrics.insert(), rows)
    return result
