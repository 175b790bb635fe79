"""The window's figures are defined once: the stored row, the table and the summaries derive from WindowResult."""

from __future__ import annotations

from dataclasses import fields
from datetime import UTC, datetime

from batch_monitor.core import ColumnDrift, EvaluationStatus, Window, WindowEvaluation, WindowMetrics, WindowResult
from batch_monitor.core.evaluation import METRIC_FIELDS, RESULT_FIELDS
from batch_monitor.window_data.store import window_row
from churn_common.database import monitoring_windows

WINDOW = Window(datetime(2026, 11, 26, 6, 50, tzinfo=UTC), datetime(2026, 11, 26, 6, 55, tzinfo=UTC))
EVALUATED_AT = datetime(2026, 11, 26, 6, 56, tzinfo=UTC)


def evaluated() -> WindowEvaluation:
    return WindowEvaluation(
        WINDOW,
        "3",
        EvaluationStatus.EVALUATED,
        500,
        n_labelled=400,
        prediction_drift=ColumnDrift("churn_probability", "wasserstein", 0.12, 0.25, False),
        **{name: 0.5 + i / 100 for i, name in enumerate(METRIC_FIELDS) if name != "dataset_drift"},
        dataset_drift=True,
    )


def test_the_monitoring_windows_columns_are_the_window_result_fields_and_the_evaluation_time() -> None:
    # GIVEN the table the dashboards read and the result the monitor stores
    columns = [column.name for column in monitoring_windows.columns]
    # THEN each column is a field of WindowResult, or the evaluation time, and each field is a column
    assert len(columns) == len(set(columns))
    assert set(columns) == {*RESULT_FIELDS, "evaluated_at"}


def test_every_metric_of_the_evaluation_is_in_the_result_and_its_row() -> None:
    evaluation = evaluated()
    result = WindowResult.of(evaluation, report_uri="s3://bucket/report.html")
    # THEN the result carries every figure of the evaluation, under the same names
    assert {name: getattr(result, name) for name in METRIC_FIELDS} == evaluation.metrics()
    assert result.prediction_drift_score == 0.12
    # AND the stored row is the result's fields and the evaluation time, each a column of the table
    row = window_row(result, evaluated_at=EVALUATED_AT)
    assert set(row) == {column.name for column in monitoring_windows.columns}
    assert WindowResult.from_row(row) == result


def test_the_metrics_are_defined_once() -> None:
    # THEN the evaluation and the result share WindowMetrics' fields, neither declares one of its own again
    assert issubclass(WindowEvaluation, WindowMetrics)
    assert issubclass(WindowResult, WindowMetrics)
    assert {f.name for f in fields(WindowEvaluation)} >= set(METRIC_FIELDS)
