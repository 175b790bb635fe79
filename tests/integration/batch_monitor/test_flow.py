"""The batch-monitor flow end to end: real Prefect server, MLflow registry, Evidently, databases and emulator."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from batch_monitor.core import as_utc
from batch_monitor.evaluation.reference import load_reference
from batch_monitor.flow import WindowsFailedError, monitor_windows
from churn_common.aws import client
from churn_common.database import alerts, monitoring_metrics, monitoring_windows
from churn_common.registry import PREDICTION_COLUMN, PROBABILITY_COLUMN, TARGET_COLUMN
from tests.integration.batch_monitor.conftest import (
    MODEL_NAME,
    WINDOW_SECONDS,
    closed_after,
    outbox_subjects,
    window_at,
)

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("prefect_server")]


def run_monitor(now):  # type: ignore[no-untyped-def]
    return monitor_windows(now=now)


def test_drifted_window_alerts_once_and_a_second_run_does_nothing(monitor_env, batch, put_window, engine) -> None:  # type: ignore[no-untyped-def]
    # GIVEN a labelled reference-like window, an unlabelled strongly drifted one and one with too few rows
    like, drifted, small = window_at(0), window_at(1), window_at(2)
    put_window(batch(n_rows=400, seed=1), window=like)
    put_window(batch(n_rows=400, seed=2, drifted=True, with_label=False), window=drifted)
    put_window(batch(n_rows=12, seed=3), window=small)

    # WHEN the monitor runs after all three closed
    summary = run_monitor(closed_after(small))

    # THEN each window is evaluated once, oldest first
    assert [(w.window_start, w.status) for w in summary.windows] == [
        (like.start, "evaluated"),
        (drifted.start, "evaluated"),
        (small.start, "too_few_rows"),
    ]
    first, second, third = summary.windows
    # the reference-like one shows no dataset drift, keeps its quality and raises nothing
    assert first.dataset_drift is False
    assert first.alerts == []
    assert first.f1 is not None
    assert first.f1 >= 0.7
    # the drifted one raises a data-drift alert; without labels its quality is only estimated (an estimated
    # quality alert may come with it: the model is unsure of customers so unlike its training data)
    assert second.dataset_drift is True
    assert second.alerts[0] == "data_drift"
    assert set(second.alerts) <= {"data_drift", "quality"}
    assert second.f1 is None
    assert second.estimated_f1 is not None
    assert len(second.drifted_columns) >= 7
    # the small one is recorded but not tested
    assert (third.n_rows, third.drift_share, third.report_uri, third.alerts) == (12, None, None, [])

    # AND the alerts arrive through SNS -> SQS, one per kind, their subjects saying what and when
    assert sorted(a.kind for a in summary.alerts_sent) == sorted(second.alerts)
    assert {a.window_start for a in summary.alerts_sent} == {drifted.start}
    subjects = outbox_subjects(monitor_env.alerts_outbox_url)
    assert sorted(subjects) == sorted(a.subject for a in summary.alerts_sent)
    drift_subject = next(a.subject for a in summary.alerts_sent if a.kind == "data_drift")
    assert "Data drift" in drift_subject
    assert f"{drifted.start:%Y-%m-%d %H:%M}" in drift_subject
    assert all("Low estimated quality" in a.subject for a in summary.alerts_sent if a.kind == "quality")

    # AND the reports are HTML objects in the bucket, linked from the table
    s3 = client("s3")
    for window in (first, second):
        bucket, key = window.report_uri.removeprefix("s3://").split("/", 1)
        head = s3.head_object(Bucket=bucket, Key=key)
        assert head["ContentType"] == "text/html"
        assert key == f"reports/{window.window_start:%Y-%m-%dT%H:%M:%SZ}_{window.model_version}.html"
    with engine.connect() as connection:
        stored = connection.execute(
            select(monitoring_windows.c.status, monitoring_windows.c.dataset_drift).order_by(
                monitoring_windows.c.window_start
            )
        ).all()
        column_scores = connection.execute(
            select(func.count()).where(monitoring_metrics.c.metric == "column_drift")
        ).scalar_one()
    assert [tuple(r) for r in stored] == [("evaluated", False), ("evaluated", True), ("too_few_rows", None)]
    assert column_scores == 2 * 13

    # WHEN the monitor runs again later THEN nothing is evaluated and nothing sent
    again = run_monitor(closed_after(window_at(5)))
    assert again.windows == []
    assert again.alerts_sent == []
    assert outbox_subjects(monitor_env.alerts_outbox_url) == []


def test_labels_that_disagree_with_the_model_raise_a_quality_alert(monitor_env, batch, put_window) -> None:  # type: ignore[no-untyped-def]
    # GIVEN a reference-like window whose labels say the opposite of every prediction
    window = window_at(0)
    put_window(batch(n_rows=300, seed=4), window=window, relabel=lambda row: 1 - row["churn_prediction"])
    # WHEN monitored
    summary = run_monitor(closed_after(window))
    # THEN the quality alert (not a drift alert) is sent, naming the metrics below their minimums
    [evaluated] = summary.windows
    assert evaluated.alerts == ["quality"]
    assert evaluated.f1 == 0.0
    assert evaluated.accuracy == 0.0
    [subject] = outbox_subjects(monitor_env.alerts_outbox_url)
    assert subject.startswith("[churn-model] Low quality: f1, precision, recall, accuracy (v")


def test_catch_up_evaluates_every_closed_window_once_oldest_first(monitor_env, batch, put_window) -> None:  # type: ignore[no-untyped-def]
    # GIVEN four consecutive windows with predictions (the monitor was down while they filled)
    windows = [window_at(i) for i in range(4)]
    for i, window in enumerate(windows):
        put_window(batch(n_rows=60, seed=10 + i, with_label=False), window=window)

    # WHEN it runs 1 s before the first window's lateness ends THEN nothing is closed yet
    assert run_monitor(closed_after(windows[0]) - timedelta(seconds=1)).windows == []
    # WHEN it runs as the first window closes THEN only that one is evaluated
    assert [w.window_start for w in run_monitor(closed_after(windows[0])).windows] == [windows[0].start]
    # WHEN it comes back after the last one closed THEN the other three, in order, each once
    caught_up = run_monitor(closed_after(windows[3]))
    assert [w.window_start for w in caught_up.windows] == [w.start for w in windows[1:]]
    assert all(w.status == "evaluated" and not w.alerts for w in caught_up.windows)
    assert run_monitor(closed_after(windows[3])).windows == []


def test_each_model_version_is_judged_against_its_own_reference(  # type: ignore[no-untyped-def]
    monitor_env, batch, put_window, registered_model, register_reference_version
) -> None:
    # GIVEN a second model version whose training data looked like today's drifted customers
    drifted_reference = batch(n_rows=1000, seed=20, drifted=True).rename(columns={"churn": TARGET_COLUMN})
    drifted_reference[PROBABILITY_COLUMN] = 0.1
    drifted_reference[PREDICTION_COLUMN] = 0
    new_version = register_reference_version(drifted_reference)
    # AND one window in which both versions scored the same drifted customers (a promotion in progress)
    window = window_at(0)
    customers = batch(n_rows=300, seed=21, drifted=True, with_label=False)
    put_window(customers, window=window)
    put_window(customers, window=window, version=new_version)

    # WHEN monitored
    summary = run_monitor(closed_after(window))

    # THEN the old version drifted against its reference and the new one did not; one alert for the window
    by_version = {w.model_version: w for w in summary.windows}
    assert set(by_version) == {registered_model.version, new_version}
    assert by_version[registered_model.version].dataset_drift is True
    assert by_version[new_version].dataset_drift is False
    assert len(load_reference(MODEL_NAME, new_version)) == 1000
    # (one alert per kind for the window, whatever else the two versions crossed)
    kinds = [a.kind for a in summary.alerts_sent]
    assert kinds.count("data_drift") == 1
    assert len(kinds) == len(set(kinds))
    assert run_monitor(closed_after(window)).windows == []


def test_an_alert_that_could_not_be_published_goes_out_with_the_next_run(  # type: ignore[no-untyped-def]
    monitor_env, batch, put_window, engine
) -> None:
    # GIVEN a drifted window (labels agreeing with the model, so drift is all it raises) and SNS failing every
    # publish (fault injected: the emulator never fails)
    window = window_at(0)
    put_window(batch(n_rows=300, seed=30, drifted=True), window=window, relabel=lambda row: row["churn_prediction"])
    sns = client("sns")

    def refuse(**_: object) -> None:
        raise ConnectionError("SNS unavailable")

    sns.meta.events.register("before-send.sns.Publish", refuse)
    try:
        # WHEN the monitor runs THEN the run fails, with the window stored and the alert recorded as unsent
        with pytest.raises(ConnectionError):
            run_monitor(closed_after(window))
    finally:
        sns.meta.events.unregister("before-send.sns.Publish", refuse)
    with engine.connect() as connection:
        recorded = connection.execute(select(alerts.c.kind, alerts.c.message_id)).all()
        evaluated = connection.execute(select(func.count()).select_from(monitoring_windows)).scalar_one()
    assert [tuple(r) for r in recorded] == [("data_drift", None)]
    assert evaluated == 1
    assert outbox_subjects(monitor_env.alerts_outbox_url) == []

    # WHEN the next run comes THEN the window is not evaluated again, but its alert is published, once
    later = run_monitor(closed_after(window_at(1)))
    assert later.windows == []
    assert [(a.kind, a.window_start) for a in later.alerts_sent] == [("data_drift", window.start)]
    assert len(outbox_subjects(monitor_env.alerts_outbox_url)) == 1
    assert run_monitor(closed_after(window_at(1))).alerts_sent == []


def test_a_window_that_cannot_be_evaluated_stays_pending_and_the_others_proceed(  # type: ignore[no-untyped-def]
    monitor_env, batch, put_window, engine
) -> None:
    # GIVEN a window scored by a version the registry does not know, followed by a normal window
    broken, fine = window_at(0), window_at(1)
    put_window(batch(n_rows=100, seed=40, with_label=False), window=broken, version="999")
    put_window(batch(n_rows=100, seed=41, with_label=False), window=fine)
    # WHEN monitored THEN the run fails naming the broken window, and the normal one is evaluated
    with pytest.raises(WindowsFailedError, match=broken.label):
        run_monitor(closed_after(fine))
    with engine.connect() as connection:
        stored = connection.execute(select(monitoring_windows.c.window_start)).scalars().all()
    assert len(stored) == 1
    assert as_utc(stored[0]) == fine.start
    # AND the broken one is still pending for the next run
    with pytest.raises(WindowsFailedError, match=broken.label):
        run_monitor(closed_after(fine))


def test_window_length_comes_from_the_settings(monitor_env, env, batch, put_window) -> None:  # type: ignore[no-untyped-def]
    # GIVEN ten-minute windows configured and rows in both halves of one ten-minute window
    env(MONITOR_WINDOW_SECONDS=str(2 * WINDOW_SECONDS))
    put_window(batch(n_rows=40, seed=50, with_label=False), window=window_at(0))
    put_window(batch(n_rows=40, seed=51, with_label=False), window=window_at(1))
    # WHEN monitored THEN they form one window of 80 rows
    [evaluated] = run_monitor(closed_after(window_at(1))).windows
    assert (evaluated.window_start, evaluated.window_end, evaluated.n_rows) == (
        window_at(0).start,
        window_at(1).end,
        80,
    )
