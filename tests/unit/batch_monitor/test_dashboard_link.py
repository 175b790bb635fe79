"""Alert e-mails link Grafana where it runs, and the local Evidently UI's dashboard where it does not."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from batch_monitor.alerting.messages import DASHBOARD_PATH, Links, crossing_alerts, dashboard_link, dashboard_url
from batch_monitor.alerting.rules import judge
from batch_monitor.core import ColumnDrift, EvaluationStatus, Thresholds, Window, WindowEvaluation
from batch_monitor.early_warning.detector import DETECTOR_CONFIG, DetectedShift, early_warning_alert
from batch_monitor.early_warning.page_hinkley import Direction, Shift
from churn_common.schema import FEATURE_COLUMNS
from churn_common.settings import Settings

WINDOW = Window(datetime(2026, 11, 26, 6, 50, tzinfo=UTC), datetime(2026, 11, 26, 6, 55, tzinfo=UTC))
EVIDENTLY = "http://127.0.0.1:8000/projects/0195c1d2-0000-7000-8000-000000000001"
GRAFANA = "https://grafana.example.com/"
THRESHOLDS = Thresholds(drift_share=0.5, min_f1=0.7, min_precision=0.7, min_recall=0.7, min_accuracy=0.7)


def drifted_window() -> WindowEvaluation:
    columns = tuple(ColumnDrift(c, "wasserstein", 0.9, 0.25, True) for c in FEATURE_COLUMNS)
    return WindowEvaluation(
        WINDOW, "3", EvaluationStatus.EVALUATED, 400, n_labelled=400, columns=columns, drift_share=1.0, f1=0.9
    )


def test_grafana_when_configured_else_the_evidently_dashboard() -> None:
    grafana = dashboard_link(grafana_url=GRAFANA, fallback_url=EVIDENTLY, start=WINDOW.start, end=WINDOW.end)
    assert grafana == dashboard_url(GRAFANA, start=WINDOW.start, end=WINDOW.end)
    assert grafana is not None
    assert grafana.startswith(f"https://grafana.example.com/{DASHBOARD_PATH}?from=")
    for unset in (None, ""):
        link = dashboard_link(grafana_url=unset, fallback_url=EVIDENTLY, start=WINDOW.start, end=WINDOW.end)
        assert link == EVIDENTLY
    assert dashboard_link(grafana_url=None, fallback_url=None, start=WINDOW.start, end=WINDOW.end) is None


def test_a_local_alert_e_mail_links_the_evidently_dashboard() -> None:
    link = dashboard_link(grafana_url=None, fallback_url=EVIDENTLY, start=WINDOW.start, end=WINDOW.end)
    [alert] = crossing_alerts(judge(drifted_window(), THRESHOLDS), Links("s3://bucket/report.html", link))
    assert alert.body.splitlines()[-1] == f"Dashboard: {EVIDENTLY}"
    assert "grafana" not in alert.body.lower()


def test_a_local_early_warning_links_the_evidently_dashboard() -> None:
    started = WINDOW.start + timedelta(seconds=30)
    shift = Shift(Direction.UP, before=0.17, after=0.34, observations=4, started_at=started.timestamp(), statistic=12)
    detected = DetectedShift("3", shift, detected_at=started.timestamp() + 95)
    local = early_warning_alert(
        detected, model_name="XGBoostChurnModel", grafana_url=None, config=DETECTOR_CONFIG, fallback_url=EVIDENTLY
    )
    assert local.body.splitlines()[-1] == f"Dashboard: {EVIDENTLY}"
    deployed = early_warning_alert(
        detected, model_name="XGBoostChurnModel", grafana_url=GRAFANA, config=DETECTOR_CONFIG, fallback_url=EVIDENTLY
    )
    assert f"Dashboard: https://grafana.example.com/{DASHBOARD_PATH}?from=" in deployed.body
    assert EVIDENTLY not in deployed.body


def test_grafana_is_unset_by_default_and_the_evidently_ui_is_on_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GRAFANA_URL", raising=False)
    assert Settings().grafana_url is None
    assert Settings(EVIDENTLY_UI_PORT="8123").evidently_ui_url == "http://127.0.0.1:8123"
    assert Settings(GRAFANA_URL=GRAFANA).grafana_url == GRAFANA
