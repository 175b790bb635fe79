"""Alert decisions are pure: an evaluation and thresholds in, the alerts to send out."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from batch_monitor.alerts import (
    SUBJECT_MAX_CHARS,
    AlertKind,
    Thresholds,
    alert_subject,
    decide_alerts,
    merge_alerts,
)
from batch_monitor.evaluation import ColumnDrift, EvaluationStatus, WindowEvaluation
from batch_monitor.windows import Window
from churn_common.schema import FEATURE_COLUMNS
from churn_common.settings import Settings

THRESHOLDS = Thresholds(drift_share=0.5, min_f1=0.7, min_precision=0.7, min_recall=0.7, min_accuracy=0.7)
WINDOW = Window(datetime(2026, 11, 26, 6, 50, tzinfo=UTC), datetime(2026, 11, 26, 6, 55, tzinfo=UTC))
REPORT = "s3://churn-pipeline-data/reports/2026-11-26T06:50:00Z_3.html"
GOOD_QUALITY = {"f1": 0.85, "precision": 0.9, "recall": 0.8, "accuracy": 0.95}


@pytest.fixture
def evaluation() -> Callable[..., WindowEvaluation]:
    """An evaluated window with the given number of drifted columns (scores 0.9 vs 0.05) and quality."""

    def build(*, drifted: int = 0, version: str = "3", **overrides: Any) -> WindowEvaluation:
        columns = tuple(
            ColumnDrift(name, "wasserstein", 0.9 if i < drifted else 0.05, 0.25, i < drifted)
            for i, name in enumerate(FEATURE_COLUMNS)
        )
        values: dict[str, Any] = {
            "n_labelled": 400,
            "columns": columns,
            "drift_share": drifted / len(columns),
            "dataset_drift": drifted / len(columns) > 0.5,
            "prediction_drift": ColumnDrift("churn_probability", "wasserstein", 0.1, 0.25, False),
            **GOOD_QUALITY,
        }
        values.update(overrides)
        return WindowEvaluation(WINDOW, version, EvaluationStatus.EVALUATED, 400, **values)

    return build


def test_reference_like_window_raises_nothing(evaluation) -> None:  # type: ignore[no-untyped-def]
    # GIVEN a window with one drifted column and good quality WHEN decided THEN no alert
    assert decide_alerts(evaluation(drifted=1), THRESHOLDS, report_uri=REPORT) == []


def test_dataset_drift_raises_one_data_drift_alert_naming_columns_scores_and_report(evaluation) -> None:  # type: ignore[no-untyped-def]
    # GIVEN a window in which 11 of 13 columns drifted
    decided = decide_alerts(evaluation(drifted=11), THRESHOLDS, report_uri=REPORT)
    # THEN exactly one data-drift alert, whose body names the window, each drifted column with its score,
    # the share against its threshold, the quality against the minimums and the report
    assert [a.kind for a in decided] == [AlertKind.DATA_DRIFT]
    body = decided[0].body
    assert "2026-11-26T06:50:00+00:00 to 2026-11-26T06:55:00+00:00" in body
    for name in FEATURE_COLUMNS[:11]:
        assert f"{name}: wasserstein 0.900 (threshold 0.25)" in body
    assert FEATURE_COLUMNS[12] not in body
    assert "share 0.85 > 0.50" in body
    assert "f1: 0.850 (minimum 0.70)" in body
    assert REPORT in body


@pytest.mark.parametrize(("drift_rows", "says_sampled"), [(150, True), (400, False), (None, False)])
def test_a_drift_alert_says_when_the_drift_rests_on_a_sample(evaluation, drift_rows, says_sampled) -> None:  # type: ignore[no-untyped-def]
    # GIVEN a drifted window of 400 rows (in the fixture) whose drift used a sample, all rows, or is not said
    decided = decide_alerts(evaluation(drifted=11, n_drift_rows=drift_rows), THRESHOLDS, report_uri=REPORT)
    # THEN only the sampled one says so, with the sample size next to the row count
    assert ("Drift from a uniform sample of 150 rows" in decided[0].body) is says_sampled
    assert "Rows: 400 (400 labelled)" in decided[0].body


def test_share_exactly_at_the_threshold_is_not_drift(evaluation) -> None:  # type: ignore[no-untyped-def]
    # GIVEN a share equal to the threshold (the rule is "more than")
    at_threshold = evaluation(drifted=2, drift_share=0.5)
    # WHEN decided THEN nothing; just above it alerts
    assert decide_alerts(at_threshold, THRESHOLDS, report_uri=REPORT) == []
    assert decide_alerts(evaluation(drifted=2, drift_share=0.51), THRESHOLDS, report_uri=REPORT)


@pytest.mark.parametrize("metric", ["f1", "precision", "recall", "accuracy"])
def test_any_quality_metric_below_its_minimum_raises_a_quality_alert(evaluation, metric: str) -> None:  # type: ignore[no-untyped-def]
    # GIVEN a window where only one metric is below its minimum
    decided = decide_alerts(evaluation(**{metric: 0.69}), THRESHOLDS, report_uri=REPORT)
    # THEN one quality alert naming that metric, its value and its minimum
    assert [a.kind for a in decided] == [AlertKind.QUALITY]
    assert metric in decided[0].subject
    assert f"{metric}: 0.690 (minimum 0.70)  BELOW" in decided[0].body


def test_drift_and_bad_quality_raise_one_alert_of_each_kind(evaluation) -> None:  # type: ignore[no-untyped-def]
    decided = decide_alerts(evaluation(drifted=13, f1=0.1, recall=0.05), THRESHOLDS, report_uri=REPORT)
    assert sorted(a.kind for a in decided) == [AlertKind.DATA_DRIFT, AlertKind.QUALITY]


def test_without_labels_quality_is_not_judged(evaluation) -> None:  # type: ignore[no-untyped-def]
    # GIVEN a drifted window without labels (no quality metrics)
    unlabelled = evaluation(drifted=9, n_labelled=0, f1=None, precision=None, recall=None, accuracy=None)
    decided = decide_alerts(unlabelled, THRESHOLDS, report_uri=REPORT)
    # THEN only the drift alert, saying quality was not computed
    assert [a.kind for a in decided] == [AlertKind.DATA_DRIFT]
    assert "Quality: not computed" in decided[0].body


def test_too_small_windows_never_alert() -> None:
    too_small = WindowEvaluation(WINDOW, "3", EvaluationStatus.TOO_FEW_ROWS, 12)
    assert decide_alerts(too_small, THRESHOLDS, report_uri=None) == []


def test_thresholds_come_from_the_settings(evaluation) -> None:  # type: ignore[no-untyped-def]
    # GIVEN settings with a strict F1 minimum
    strict = Thresholds.from_settings(Settings(MIN_F1="0.9", DRIFT_SHARE_THRESHOLD="0.9"))
    # WHEN a window with F1 0.85 and 10/13 drifted columns is decided
    decided = decide_alerts(evaluation(drifted=10), strict, report_uri=REPORT)
    # THEN F1 alerts and the drift share (0.77) does not
    assert [a.kind for a in decided] == [AlertKind.QUALITY]


@pytest.mark.parametrize("version", ["3", "v" * 300, "versión-ü\nnext"])
def test_subjects_are_short_single_line_ascii_and_say_what_and_when(evaluation, version: str) -> None:  # type: ignore[no-untyped-def]
    decided = decide_alerts(evaluation(drifted=12, f1=0.2, version=version), THRESHOLDS, report_uri=REPORT)
    for alert in decided:
        assert len(alert.subject) <= SUBJECT_MAX_CHARS
        assert alert.subject.isascii()
        assert "\n" not in alert.subject
        assert alert.subject.endswith("window 2026-11-26 06:50-06:55 UTC")
    assert "Data drift in 12/13 columns" in decided[0].subject


def test_alerts_of_several_versions_in_one_window_merge_into_one_per_kind(evaluation) -> None:  # type: ignore[no-untyped-def]
    # GIVEN two versions in the same window that both drifted, one of them also with bad quality
    decided = [
        *decide_alerts(evaluation(drifted=10, version="3"), THRESHOLDS, report_uri=REPORT),
        *decide_alerts(evaluation(drifted=9, version="4", f1=0.3), THRESHOLDS, report_uri=REPORT),
    ]
    # WHEN merged
    merged = merge_alerts(decided)
    # THEN one alert per kind; the drift alert carries both versions' findings
    assert sorted(a.kind for a in merged) == [AlertKind.DATA_DRIFT, AlertKind.QUALITY]
    drift = next(a for a in merged if a.kind is AlertKind.DATA_DRIFT)
    assert "2 model versions" in drift.subject
    assert "Model version: 3" in drift.body
    assert "Model version: 4" in drift.body


def test_subjects_of_sub_minute_windows_show_seconds() -> None:
    # GIVEN a 10-second window (as in the demo)
    window = Window(datetime(2026, 11, 26, 8, 7, 50, tzinfo=UTC), datetime(2026, 11, 26, 8, 8, 0, tzinfo=UTC))
    # WHEN its subject is written THEN both ends are told apart
    assert alert_subject("Data drift", window).endswith("window 2026-11-26 08:07:50-08:08:00 UTC")
