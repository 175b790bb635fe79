"""Monitoring results in real SQLite and Postgres: one summary row and its metric rows, replaced on re-runs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, create_engine, func, inspect, select, text

from batch_monitor.alerting import Alert, AlertKind
from batch_monitor.alerting.ledger import record_alerts
from batch_monitor.core import ColumnDrift, EvaluationStatus, Window, WindowEvaluation
from batch_monitor.window_data.store import store_evaluation
from churn_common.database import alerts, get_engine, monitoring_metrics, monitoring_windows
from churn_common.schema import FEATURE_COLUMNS

pytestmark = pytest.mark.integration

WINDOW = Window(datetime(2026, 11, 26, 6, 0, tzinfo=UTC), datetime(2026, 11, 26, 6, 5, tzinfo=UTC))
EVALUATED_AT = datetime(2026, 11, 26, 6, 6, tzinfo=UTC)


@pytest.fixture
def engine(database_url: str) -> Engine:
    return get_engine(database_url)


@pytest.fixture
def evaluation() -> Callable[..., WindowEvaluation]:
    def build(*, score: float, version: str = "1", f1: float | None = 0.8) -> WindowEvaluation:
        columns = tuple(ColumnDrift(c, "wasserstein", score, 0.25, score >= 0.25) for c in FEATURE_COLUMNS)
        share = sum(c.drifted for c in columns) / len(columns)
        return WindowEvaluation(
            WINDOW,
            version,
            EvaluationStatus.EVALUATED,
            500,
            n_labelled=500 if f1 is not None else 0,
            columns=columns,
            drift_share=share,
            dataset_drift=share > 0.5,
            prediction_drift=ColumnDrift("churn_probability", "wasserstein", 0.1, 0.25, False),
            f1=f1,
            precision=f1,
            recall=f1,
            accuracy=f1,
        )

    return build


def metrics_of(engine: Engine, version: str = "1") -> dict[tuple[str, str | None], float | None]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(monitoring_metrics.c.metric, monitoring_metrics.c.column, monitoring_metrics.c.value).where(
                monitoring_metrics.c.model_version == version
            )
        ).all()
    assert len(rows) == len({(r.metric, r.column) for r in rows}), "a metric row is duplicated"
    return {(r.metric, r.column): r.value for r in rows}


def test_a_window_is_stored_as_one_summary_row_and_one_row_per_metric(engine, evaluation) -> None:  # type: ignore[no-untyped-def]
    # WHEN a drifted, labelled window is stored
    store_evaluation(engine, evaluation(score=0.9), report_uri="s3://b/r.html", evaluated_at=EVALUATED_AT)
    # THEN its summary row holds the key numbers
    with engine.connect() as connection:
        row = connection.execute(select(monitoring_windows)).one()
    assert (row.status, row.n_rows, row.drift_share, row.dataset_drift, row.f1) == ("evaluated", 500, 1.0, True, 0.8)
    assert (row.prediction_drift_score, row.report_uri) == (0.1, "s3://b/r.html")
    # AND every column's drift score, the share, the quality and the counts are metric rows
    metrics = metrics_of(engine)
    assert all(metrics["column_drift", c] == 0.9 for c in FEATURE_COLUMNS)
    assert metrics["drift_share", None] == 1.0
    assert metrics["prediction_drift", "churn_probability"] == 0.1
    assert (metrics["f1", None], metrics["accuracy", None], metrics["n_rows", None]) == (0.8, 0.8, 500)


def test_the_rows_behind_a_sampled_drift_are_a_metric(engine, evaluation) -> None:  # type: ignore[no-untyped-def]
    # GIVEN a window of 500 rows whose drift was judged on a sample of 120
    sampled = replace(evaluation(score=0.1), n_drift_rows=120)
    # WHEN stored THEN the sample size sits next to the row count
    store_evaluation(engine, sampled, report_uri=None, evaluated_at=EVALUATED_AT)
    metrics = metrics_of(engine)
    assert (metrics["n_rows", None], metrics["n_drift_rows", None]) == (500, 120)


def test_re_storing_a_window_replaces_its_rows_and_leaves_other_versions_alone(engine, evaluation) -> None:  # type: ignore[no-untyped-def]
    # GIVEN a window stored for versions 1 and 2
    store_evaluation(engine, evaluation(score=0.9), report_uri="s3://b/old.html", evaluated_at=EVALUATED_AT)
    store_evaluation(engine, evaluation(score=0.9, version="2"), report_uri=None, evaluated_at=EVALUATED_AT)
    before = metrics_of(engine, "2")
    # WHEN version 1 is evaluated again, now without drift and without labels
    later = EVALUATED_AT + timedelta(hours=1)
    store_evaluation(engine, evaluation(score=0.05, f1=None), report_uri="s3://b/new.html", evaluated_at=later)
    # THEN version 1 has exactly the new rows, and version 2 is untouched
    with engine.connect() as connection:
        rows = connection.execute(
            select(
                monitoring_windows.c.model_version, monitoring_windows.c.dataset_drift, monitoring_windows.c.report_uri
            ).order_by(monitoring_windows.c.model_version)
        ).all()
    assert [tuple(r) for r in rows] == [("1", False, "s3://b/new.html"), ("2", True, None)]
    metrics = metrics_of(engine)
    assert metrics["drift_share", None] == 0.0
    assert ("f1", None) not in metrics
    assert metrics_of(engine, "2") == before


def test_an_alert_is_recorded_once_per_window_and_kind(engine) -> None:  # type: ignore[no-untyped-def]
    # GIVEN a drift alert recorded for a window
    first = Alert(AlertKind.DATA_DRIFT, WINDOW, "subject", "body")
    assert record_alerts(engine, [first]) == 1
    # WHEN the same window's drift alert (and a quality alert) are recorded again
    again = [
        Alert(AlertKind.DATA_DRIFT, WINDOW, "other subject", "other body"),
        Alert(AlertKind.QUALITY, WINDOW, "q", "b"),
    ]
    # THEN only the quality alert is new, and the first drift alert is kept as it was
    assert record_alerts(engine, again) == 1
    with engine.connect() as connection:
        rows = connection.execute(select(alerts.c.kind, alerts.c.subject).order_by(alerts.c.kind)).all()
        assert connection.execute(select(func.count()).select_from(alerts)).scalar_one() == 2
    assert [tuple(r) for r in rows] == [("data_drift", "subject"), ("quality", "q")]


def test_estimated_quality_is_stored_next_to_the_counted_one(engine, evaluation) -> None:  # type: ignore[no-untyped-def]
    # GIVEN an unlabelled window whose quality was estimated
    estimated = {"estimated_f1": 0.81, "estimated_precision": 0.77, "estimated_recall": 0.86}
    unlabelled = replace(evaluation(score=0.1, f1=None), estimated_accuracy=0.93, estimated_roc_auc=0.95, **estimated)
    # WHEN stored
    store_evaluation(engine, unlabelled, report_uri=None, evaluated_at=EVALUATED_AT)
    # THEN the summary row and the metric rows carry the estimates under their own names, and no counted quality
    with engine.connect() as connection:
        row = connection.execute(select(monitoring_windows)).one()
    assert (row.f1, row.estimated_f1, row.estimated_roc_auc) == (None, 0.81, 0.95)
    metrics = metrics_of(engine)
    assert metrics["estimated_precision", None] == 0.77
    assert metrics["estimated_accuracy", None] == 0.93
    assert ("f1", None) not in metrics


def test_an_older_database_gains_the_new_columns_and_keeps_its_rows(database_url: str) -> None:
    # GIVEN a database made before alerts had a status and windows had estimates, holding an alert
    legacy = create_engine(database_url)
    with legacy.begin() as connection:
        connection.execute(
            text(
                "CREATE TABLE alerts (id INTEGER PRIMARY KEY, window_start TIMESTAMP NOT NULL,"
                " window_end TIMESTAMP NOT NULL, kind VARCHAR(32) NOT NULL, subject VARCHAR(100) NOT NULL,"
                " message TEXT NOT NULL, message_id VARCHAR(128), sent_at TIMESTAMP NOT NULL)"
            )
        )
        connection.execute(
            text(
                "INSERT INTO alerts (id, window_start, window_end, kind, subject, message, message_id, sent_at)"
                " VALUES (1, '2026-11-26 06:00:00', '2026-11-26 06:05:00', 'data_drift', 's', 'm', 'id-1',"
                " '2026-11-26 06:06:00')"
            )
        )
        connection.execute(
            text(
                "CREATE TABLE monitoring_windows (window_start TIMESTAMP NOT NULL, window_end TIMESTAMP NOT NULL,"
                " model_version VARCHAR(32) NOT NULL, status VARCHAR(32) NOT NULL, n_rows INTEGER NOT NULL,"
                " drift_share FLOAT, dataset_drift BOOLEAN, prediction_drift_score FLOAT, f1 FLOAT,"
                ' "precision" FLOAT, recall FLOAT, accuracy FLOAT, report_uri TEXT,'
                " evaluated_at TIMESTAMP NOT NULL, PRIMARY KEY (window_start, model_version))"
            )
        )
    legacy.dispose()
    # WHEN the pipeline opens it
    engine = get_engine(database_url)
    # THEN the new columns are there, the old alert counts as sent, and the new columns take values
    columns = {c["name"] for c in inspect(engine).get_columns("monitoring_windows")}
    assert {"estimated_f1", "estimated_roc_auc"} <= columns
    with engine.connect() as connection:
        assert connection.execute(select(alerts.c.kind, alerts.c.status)).all() == [("data_drift", "sent")]
    store_evaluation(
        engine, replace(evaluation_for_upgrade(), estimated_f1=0.8), report_uri=None, evaluated_at=EVALUATED_AT
    )
    with engine.connect() as connection:
        assert connection.execute(select(monitoring_windows.c.estimated_f1)).scalar_one() == 0.8


def evaluation_for_upgrade() -> WindowEvaluation:
    return WindowEvaluation(WINDOW, "1", EvaluationStatus.TOO_FEW_ROWS, 10)
