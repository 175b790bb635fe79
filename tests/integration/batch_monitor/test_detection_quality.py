"""Detection quality of the whole monitor (real flow, real Evidently, real databases): reference-like windows
raise nothing, and a shift in the middle of the stream is flagged within two windows of it.

The windows arrive as the scorer writes them, unlabelled, one monitor run after each closes. Two kinds of
shift: most features moved by about a standard deviation (``strong_drift()``), which the churn probability
hardly notices, and a surge of complaints alone, one column, which doubles the mean churn probability.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from batch_monitor.core import as_utc
from batch_monitor.flow import monitor_windows
from churn_common.database import alerts
from data.synthetic import strong_drift
from tests.integration.batch_monitor.conftest import closed_after, outbox_messages, window_at

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("prefect_server")]

CALM_WINDOWS = 5
ROWS_PER_WINDOW = 300


# Each shift on one database: detection is the same arithmetic on both, and both are covered (seven monitor
# runs a case make this the monitor's costliest test).
@pytest.mark.parametrize(
    ("drift", "expected_kinds", "database_url"),
    [
        pytest.param(strong_drift(), {"data_drift"}, "postgres", id="most-features-postgres"),
        pytest.param({"complains": 1.0}, {"prediction_drift", "early_warning"}, "sqlite", id="complaints-surge-sqlite"),
    ],
    indirect=["database_url"],
)
def test_calm_windows_raise_nothing_and_a_shift_is_flagged_within_two_windows(  # type: ignore[no-untyped-def]
    monitor_env, put_stream, engine, drift, expected_kinds
) -> None:
    # GIVEN five reference-like windows in a row, each monitored as it closes
    consumed = 0
    for i in range(CALM_WINDOWS):
        put_stream(window=window_at(i), n_rows=ROWS_PER_WINDOW, seed=100 + i)
        summary = monitor_windows(now=closed_after(window_at(i)))
        assert [w.status for w in summary.windows] == ["evaluated"]
        assert summary.detector is not None
        consumed += summary.detector.consumed
    # THEN no alert of any kind was raised, recorded or sent, and the detector saw every prediction
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(alerts)).scalar_one() == 0
    assert outbox_messages(monitor_env.alerts_outbox_url) == []
    assert consumed == CALM_WINDOWS * ROWS_PER_WINDOW

    # WHEN the customers shift and two more windows are monitored as they close
    shifted = [window_at(CALM_WINDOWS), window_at(CALM_WINDOWS + 1)]
    for j, window in enumerate(shifted):
        put_stream(window=window, n_rows=ROWS_PER_WINDOW, seed=200 + j, drift=drift)
        monitor_windows(now=closed_after(window))

    # THEN the expected kinds were raised, every alert within the two shifted windows
    with engine.connect() as connection:
        raised = connection.execute(select(alerts.c.kind, alerts.c.window_start, alerts.c.window_end)).all()
    assert expected_kinds <= {r.kind for r in raised}
    for row in raised:
        assert shifted[0].start - timedelta(seconds=1) <= as_utc(row.window_start) < shifted[1].end
        assert as_utc(row.window_end) <= shifted[1].end + timedelta(seconds=1)
    # AND they were e-mailed
    subjects = [subject for subject, _ in outbox_messages(monitor_env.alerts_outbox_url)]
    assert len(subjects) >= len(expected_kinds)
