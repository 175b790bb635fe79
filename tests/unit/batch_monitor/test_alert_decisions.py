"""Alert decisions are pure: an evaluation and thresholds in, the alerts to send out."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from batch_monitor.alerting.episodes import QUIET, Action, Episode, Verdict
from batch_monitor.alerting.ledger import Due
from batch_monitor.alerting.messages import (
    DASHBOARD_PATH,
    Alert,
    Links,
    Recovery,
    alert_subject,
    crossing_alerts,
    dashboard_url,
    held_back,
    merge_alerts,
    message_for,
    recovery_alert,
)
from batch_monitor.alerting.publishing import SUBJECT_MAX_CHARS
from batch_monitor.alerting.rules import AlertKind, Judgement, judge
from batch_monitor.core import ColumnDrift, EvaluationStatus, Thresholds, Window, WindowEvaluation
from batch_monitor.early_warning.detector import DETECTOR_CONFIG, DetectedShift, early_warning_alert
from batch_monitor.early_warning.page_hinkley import Direction, Shift
from churn_common.schema import FEATURE_COLUMNS
from churn_common.settings import Settings
from tests.conftest import REPO_ROOT

THRESHOLDS = Thresholds(drift_share=0.5, min_f1=0.7, min_precision=0.7, min_recall=0.7, min_accuracy=0.7)
WINDOW = Window(datetime(2026, 11, 26, 6, 50, tzinfo=UTC), datetime(2026, 11, 26, 6, 55, tzinfo=UTC))
REPORT = "s3://churn-pipeline-data/reports/2026-11-26T06:50:00Z_3.html"
GOOD_QUALITY = {"f1": 0.85, "precision": 0.9, "recall": 0.8, "accuracy": 0.95}
NO_LABELS = {"n_labelled": 0, "f1": None, "precision": None, "recall": None, "accuracy": None}
DASHBOARD = dashboard_url("http://grafana.example:3000/", start=WINDOW.start, end=WINDOW.end)


def decide_alerts(
    evaluation: WindowEvaluation, thresholds: Thresholds, *, report_uri: str | None, dashboard_url: str | None = None
) -> list[Alert]:
    """The window judged once, then the alert of each crossed kind."""
    return crossing_alerts(judge(evaluation, thresholds), Links(report_uri, dashboard_url))


def window_verdicts(evaluation: WindowEvaluation, thresholds: Thresholds) -> dict[AlertKind, Verdict]:
    return dict(judge(evaluation, thresholds).verdicts)


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
    moved = ColumnDrift("churn_probability", "wasserstein", 0.9, 0.25, True)
    decided = decide_alerts(
        evaluation(drifted=12, f1=0.2, version=version, prediction_drift=moved), THRESHOLDS, report_uri=REPORT
    )
    assert len(decided) == 3
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


def estimated(**values: float) -> dict[str, float]:
    good = {"f1": 0.84, "precision": 0.8, "recall": 0.88, "accuracy": 0.95, "roc_auc": 0.97}
    return {f"estimated_{name}": value for name, value in {**good, **values}.items()}


def test_a_drifted_churn_probability_raises_a_prediction_drift_alert(evaluation) -> None:  # type: ignore[no-untyped-def]
    # GIVEN a window whose features barely moved but whose churn probabilities did
    moved = ColumnDrift("churn_probability", "wasserstein", 0.52, 0.25, True)
    decided = decide_alerts(evaluation(drifted=1, prediction_drift=moved), THRESHOLDS, report_uri=REPORT)
    # THEN one prediction-drift alert (and no data-drift alert) with the score against its threshold
    assert [a.kind for a in decided] == [AlertKind.PREDICTION_DRIFT]
    assert decided[0].subject.startswith("[churn-model] Prediction drift: churn probability 0.52 (v3) | window")
    assert "Churn probability: wasserstein 0.520 (threshold 0.25, drifted)" in decided[0].body
    assert "Drifted columns: 1 of 13 (share 0.08 <= 0.50)" in decided[0].body


def test_without_labels_the_estimated_quality_is_judged_and_said_to_be_estimated(evaluation) -> None:  # type: ignore[no-untyped-def]
    # GIVEN an unlabelled window of 400 rows whose estimated recall is below its minimum
    unlabelled = evaluation(**NO_LABELS, **estimated(recall=0.55, f1=0.65))
    decided = decide_alerts(unlabelled, THRESHOLDS, report_uri=REPORT)
    # THEN a quality alert whose subject and body say the figures are estimated
    assert [a.kind for a in decided] == [AlertKind.QUALITY]
    assert decided[0].subject.startswith("[churn-model] Low estimated quality: f1, recall (v3)")
    body = decided[0].body
    assert "Quality estimated (labels absent)" in body
    assert "recall: 0.550 (estimated) (minimum 0.70)  BELOW" in body
    assert "roc_auc: 0.970 (estimated)" in body
    # AND with good estimates the verdict is clear, not unknown
    assert window_verdicts(evaluation(**NO_LABELS, **estimated()), THRESHOLDS)[AlertKind.QUALITY] is Verdict.CLEAR


def test_counted_quality_wins_over_the_estimate(evaluation) -> None:  # type: ignore[no-untyped-def]
    # GIVEN a labelled window with good counted quality and a poor estimate
    decided = decide_alerts(evaluation(**estimated(f1=0.3)), THRESHOLDS, report_uri=REPORT)
    # THEN the counted quality decides: no alert
    assert decided == []


def test_an_estimate_on_a_small_window_is_not_judged(evaluation) -> None:  # type: ignore[no-untyped-def]
    # GIVEN an unlabelled window of 120 rows with a poor estimate (too noisy at that size)
    small = WindowEvaluation(WINDOW, "3", EvaluationStatus.EVALUATED, 120, drift_share=0.0, **estimated(precision=0.5))
    # THEN quality is unknown and nothing is sent
    assert window_verdicts(small, THRESHOLDS)[AlertKind.QUALITY] is Verdict.UNKNOWN
    assert decide_alerts(small, THRESHOLDS, report_uri=REPORT) == []


def test_every_alert_links_the_report_and_the_dashboard_at_the_window(evaluation) -> None:  # type: ignore[no-untyped-def]
    moved = ColumnDrift("churn_probability", "wasserstein", 0.9, 0.25, True)
    decided = decide_alerts(
        evaluation(drifted=12, f1=0.2, prediction_drift=moved), THRESHOLDS, report_uri=REPORT, dashboard_url=DASHBOARD
    )
    assert len(decided) == 3
    for alert in decided:
        assert f"Report: {REPORT}" in alert.body
        assert f"Dashboard: {DASHBOARD}" in alert.body
    # AND the link opens the monitoring dashboard half an hour either side of the window
    link = urlsplit(DASHBOARD)
    assert f"{link.scheme}://{link.netloc}{link.path}" == f"http://grafana.example:3000/{DASHBOARD_PATH}"
    query = parse_qs(link.query)
    assert int(query["from"][0]) == int((WINDOW.start - timedelta(minutes=30)).timestamp() * 1000)
    assert int(query["to"][0]) == int((WINDOW.end + timedelta(minutes=30)).timestamp() * 1000)


def test_the_dashboard_link_names_the_provisioned_monitoring_dashboard() -> None:
    # GIVEN the dashboard JSON Grafana is provisioned with
    path = REPO_ROOT / "infra" / "grafana" / "dashboards" / "json" / "churn-model-monitoring.json"
    uid = json.loads(path.read_text())["uid"]
    # THEN the link's path is that dashboard's
    assert DASHBOARD_PATH.split("/")[1] == uid


def test_a_recovery_says_what_recovered_since_when_and_links_the_window(evaluation) -> None:  # type: ignore[no-untyped-def]
    since = WINDOW.start - timedelta(minutes=15)
    alert = recovery_alert(
        AlertKind.DATA_DRIFT,
        [judge(evaluation(drifted=1), THRESHOLDS)],
        since=since,
        links=Links(REPORT, DASHBOARD),
    )
    assert alert.kind is AlertKind.DATA_DRIFT
    assert alert.subject.startswith("[churn-model] Recovered: data drift (v3) | window")
    assert len(alert.subject) <= SUBJECT_MAX_CHARS
    assert "back within its limits" in alert.body
    assert f"episode since the window of {since.isoformat()}" in alert.body
    assert "Drifted columns: 1 of 13 (share 0.08 <= 0.50)" in alert.body
    assert f"Dashboard: {DASHBOARD}" in alert.body


def test_a_held_back_crossing_keeps_its_message_and_says_why_it_was_not_sent(evaluation) -> None:  # type: ignore[no-untyped-def]
    [alert] = decide_alerts(evaluation(drifted=11), THRESHOLDS, report_uri=REPORT)
    last = WINDOW.start - timedelta(minutes=5)
    kept = held_back(alert, last_notified=last, cooldown=timedelta(minutes=30))
    assert kept.subject == alert.subject
    assert kept.body.startswith("Not e-mailed (cool-down)")
    assert (last + timedelta(minutes=30)).isoformat() in kept.body
    assert kept.body.endswith(alert.body)


@pytest.mark.parametrize("version", ["3", "v" * 300])
def test_an_early_warning_says_which_way_from_what_to_what_and_when(version: str) -> None:
    # GIVEN a detected rise of the mean churn probability
    started = datetime(2026, 11, 26, 6, 51, 30, tzinfo=UTC)
    shift = Shift(
        Direction.UP, before=0.168, after=0.336, observations=4, started_at=started.timestamp(), statistic=11.8
    )
    detected = DetectedShift(version, shift, detected_at=started.timestamp() + 95)
    # WHEN its alert is written
    alert = early_warning_alert(
        detected, model_name="XGBoostChurnModel", grafana_url="http://localhost:3000", config=DETECTOR_CONFIG
    )
    # THEN the subject is short ASCII saying direction, levels and the moment; the body gives the details
    assert alert.kind is AlertKind.EARLY_WARNING
    assert len(alert.subject) <= SUBJECT_MAX_CHARS
    assert alert.subject.isascii()
    assert alert.subject.endswith("| at 2026-11-26 06:53:05 UTC")
    assert "Early warning: churn probability up 0.17 -> 0.34" in alert.subject
    assert "moved up from 0.168 to 0.336" in alert.body
    assert "200 predictions later" in alert.body
    assert "Dashboard: http://localhost:3000/d/churn-monitoring/" in alert.body
    assert (alert.window.start, alert.window.end) == (started, started + timedelta(seconds=95))


def test_messages_follow_the_verdicts_of_the_judgement_and_never_judge_again(evaluation) -> None:  # type: ignore[no-untyped-def]
    # GIVEN a window whose figures cross nothing, and a judgement that says data drift crossed
    judged = judge(evaluation(drifted=1), THRESHOLDS)
    assert judged.crossed == ()
    crossed = Judgement(judged.evaluation, THRESHOLDS, {**judged.verdicts, AlertKind.DATA_DRIFT: Verdict.CROSSED})
    # THEN the messages are those of the judgement's crossed kinds
    assert [a.kind for a in crossing_alerts(crossed, Links(REPORT))] == [AlertKind.DATA_DRIFT]
    assert crossing_alerts(judged, Links(REPORT)) == []


def test_each_due_ledger_step_gets_its_message(evaluation) -> None:  # type: ignore[no-untyped-def]
    # GIVEN a crossing of data drift and the recovery context of its window
    judged = judge(evaluation(drifted=11), THRESHOLDS)
    [alert] = crossing_alerts(judged, Links(REPORT))
    crossed = {alert.kind: alert}
    recovery = Recovery([judged], Links(REPORT, DASHBOARD))
    cooldown = timedelta(minutes=30)
    last = WINDOW.start - timedelta(minutes=5)
    started = WINDOW.start - timedelta(minutes=20)
    episode = Episode(active=True, last_notified=last, started=started)
    kind = str(AlertKind.DATA_DRIFT)

    def message(action: Action, of: Episode) -> Alert:
        return message_for(Due(kind, action, of), crossed=crossed, cooldown=cooldown, recovery=recovery)

    # THEN a notification is the crossing itself, a suppressed one is held back, a recovery says since when
    assert message(Action.NOTIFY, QUIET) == alert
    assert message(Action.SUPPRESS, episode) == held_back(alert, last_notified=last, cooldown=cooldown)
    recovered = message(Action.RECOVER, episode)
    assert recovered.subject.startswith("[churn-model] Recovered: data drift (v3)")
    assert f"episode since the window of {started.isoformat()}" in recovered.body


@pytest.mark.parametrize(
    ("estimated_f1", "f1", "stood", "verdict"),
    [
        (0.95, 0.60, True, Verdict.CROSSED),
        (0.60, 0.80, True, Verdict.CROSSED),
        (0.80, 0.70, True, Verdict.CLEAR),
        (0.85, 0.71, True, Verdict.CLEAR),
        (0.82, None, True, Verdict.UNKNOWN),
        (0.95, 0.60, False, Verdict.UNKNOWN),
    ],
    ids=["too-optimistic", "too-pessimistic", "close", "just-within", "no-labels-yet", "labelled-at-scoring"],
)
def test_the_estimate_is_judged_against_the_realised_f1_once_labels_give_one(  # type: ignore[no-untyped-def]
    evaluation, estimated_f1, f1, stood, verdict
) -> None:
    # GIVEN a window whose estimate stood (or not: labelled when scored) at estimated_f1 and whose labels (if
    # any) gave f1; 0.15 allowed
    error = None if f1 is None else estimated_f1 - f1
    window = evaluation(estimated_f1=estimated_f1, f1=f1, estimate_error=error, estimate_stood=stood)
    thresholds = Thresholds(
        drift_share=0.5, min_f1=0.5, min_precision=0.5, min_recall=0.5, min_accuracy=0.5, max_estimate_error=0.15
    )
    # WHEN judged THEN the verdict follows |estimated - realised| > 0.15 where an estimate stood, else unknown
    assert window_verdicts(window, thresholds)[AlertKind.ESTIMATE_ERROR] is verdict


def test_an_estimate_error_alert_quotes_both_figures_the_error_and_the_coverage(evaluation) -> None:  # type: ignore[no-untyped-def]
    # GIVEN a window estimated at F1 0.90 whose labels (80 % of its records) show 0.55
    window = evaluation(estimated_f1=0.90, f1=0.55, estimate_error=0.90 - 0.55, label_coverage=0.8, estimate_stood=True)
    # WHEN decided
    decided = decide_alerts(window, THRESHOLDS, report_uri=REPORT)
    # THEN beside the low-quality alert there is one estimate-error alert naming the figures and the error
    assert sorted(a.kind for a in decided) == sorted([AlertKind.QUALITY, AlertKind.ESTIMATE_ERROR])
    alert = next(a for a in decided if a.kind is AlertKind.ESTIMATE_ERROR)
    assert "Quality estimate off by +0.35 F1 (v3)" in alert.subject
    assert "Estimated F1 0.900 vs realised F1 0.550: off by +0.350 (|error| > 0.15)" in alert.body
    assert "Label coverage: 80% of the window's records" in alert.body
    assert REPORT in alert.body


def test_the_estimate_error_follows_from_both_f1_figures() -> None:
    # GIVEN/WHEN/THEN the error is estimated minus realised, and unknown while either is missing
    from batch_monitor.core.evaluation import f1_estimate_error

    assert f1_estimate_error(estimated_f1=0.9, f1=0.6) == pytest.approx(0.3)
    assert f1_estimate_error(estimated_f1=0.5, f1=0.75) == pytest.approx(-0.25)
    assert f1_estimate_error(estimated_f1=None, f1=0.6) is None
    assert f1_estimate_error(estimated_f1=0.9, f1=None) is None


@pytest.mark.parametrize(
    ("f1", "estimated_f1", "before", "stood"),
    [(None, 0.8, False, True), (0.7, 0.8, False, False), (0.7, 0.8, True, True), (None, None, False, False)],
    ids=["estimate-only", "labelled-at-once", "labelled-later", "nothing-to-stand"],
)
def test_an_estimate_stood_when_quality_rested_on_it_now_or_at_an_earlier_evaluation(
    f1: float | None, estimated_f1: float | None, before: bool, stood: bool
) -> None:
    from batch_monitor.core.evaluation import estimate_stood

    assert estimate_stood(f1=f1, estimated_f1=estimated_f1, before=before) is stood
