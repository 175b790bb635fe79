"""Cool-down and recovery through the real flow: a lasting drift sends one e-mail, not one per window, and its
end sends one "recovered" e-mail; every decision is a row of the ledger (emulator SNS -> SQS, real databases)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from batch_monitor.flow import monitor_windows
from churn_common.database import alerts
from tests.integration.batch_monitor.conftest import closed_after, outbox_messages, window_at

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("prefect_server")]


def agreeing(row: dict[str, object]) -> int:
    """Labels that agree with the model: quality stays perfect, so drift is the only line crossed."""
    return int(row["churn_prediction"])  # type: ignore[call-overload]


def test_three_drifted_windows_send_one_e_mail_and_the_clean_one_after_them_one_recovery(  # type: ignore[no-untyped-def]
    monitor_env, env, batch, put_window, engine
) -> None:
    # GIVEN a dashboard address, the default 30-minute cool-down, and three drifted five-minute windows
    env(GRAFANA_URL="https://grafana.example.com/")
    drifted = [window_at(i) for i in range(3)]
    clean = window_at(3)
    for i, window in enumerate(drifted):
        put_window(batch(n_rows=300, seed=60 + i, drifted=True), window=window, relabel=agreeing)

    # WHEN the monitor runs as each of them closes
    for window in drifted:
        monitor_windows(now=closed_after(window))

    # THEN one data-drift e-mail went out, for the first window, linking the report and the dashboard
    [(subject, message)] = outbox_messages(monitor_env.alerts_outbox_url)
    assert subject.startswith("[churn-model] Data drift in ")
    assert f"window {drifted[0].start:%Y-%m-%d %H:%M}" in subject
    assert "Report: s3://" in message
    assert "Dashboard: https://grafana.example.com/d/churn-monitoring/churn-model-monitoring?from=" in message

    # WHEN a reference-like window follows and closes
    put_window(batch(n_rows=300, seed=63), window=clean, relabel=agreeing)
    summary = monitor_windows(now=closed_after(clean))

    # THEN exactly one recovery e-mail goes out, for the clean window
    [(subject, message)] = outbox_messages(monitor_env.alerts_outbox_url)
    assert subject.startswith("[churn-model] Recovered: data drift (v")
    assert f"window {clean.start:%Y-%m-%d %H:%M}" in subject
    assert f"episode since the window of {drifted[0].start.isoformat()}" in message
    assert [(a.kind, a.status) for a in summary.recorded_alerts] == [("data_drift", "recovery")]
    # AND the ledger holds every decision: sent, two held back by the cool-down, the recovery
    with engine.connect() as connection:
        rows = connection.execute(
            select(alerts.c.kind, alerts.c.status, alerts.c.message_id.is_not(None)).order_by(alerts.c.window_start)
        ).all()
    assert [tuple(r) for r in rows] == [
        ("data_drift", "sent", True),
        ("data_drift", "suppressed", False),
        ("data_drift", "suppressed", False),
        ("data_drift", "recovery", True),
    ]

    # WHEN another clean window follows THEN nothing more is sent (the episode is over)
    put_window(batch(n_rows=300, seed=64), window=window_at(4), relabel=agreeing)
    assert monitor_windows(now=closed_after(window_at(4))).alerts_sent == []
    assert outbox_messages(monitor_env.alerts_outbox_url) == []


def test_a_drift_that_outlasts_the_cool_down_is_reminded(monitor_env, env, batch, put_window, engine) -> None:  # type: ignore[no-untyped-def]
    # GIVEN a 10-minute cool-down and four drifted five-minute windows, evaluated in one catch-up run
    env(ALERT_COOLDOWN_SECONDS="600")
    windows = [window_at(i) for i in range(4)]
    for i, window in enumerate(windows):
        put_window(batch(n_rows=300, seed=70 + i, drifted=True), window=window, relabel=agreeing)
    # WHEN the monitor catches up
    summary = monitor_windows(now=closed_after(windows[-1]))
    # THEN the first window is e-mailed, the next held back, the third (10 minutes on) reminded, and so on
    assert [(a.window_start, a.status) for a in summary.recorded_alerts] == [
        (windows[0].start, "sent"),
        (windows[1].start, "suppressed"),
        (windows[2].start, "sent"),
        (windows[3].start, "suppressed"),
    ]
    assert len(outbox_messages(monitor_env.alerts_outbox_url)) == 2
