"""The early-warning detector on real databases: its state survives restarts (new engine, new process) with each
prediction consumed once and the same result as one uninterrupted run, and the flow warns before a window
closes."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import Engine, select

from batch_monitor.core import Window, as_utc
from batch_monitor.early_warning.detector import advance, detector_states, run_detector
from batch_monitor.flow import monitor_windows
from churn_common.database import alerts, dispose_engine, get_engine, predictions
from tests.conftest import REPO_ROOT
from tests.integration.batch_monitor.conftest import MODEL_NAME, window_at

pytestmark = pytest.mark.integration

# The customers' complaints surge: the mean churn probability roughly doubles (early_warning notes).
COMPLAINTS_SURGE = {"complains": 1.0}
NO_COOLDOWN = timedelta(0)


def uninterrupted(engine: Engine) -> tuple[dict, list]:  # type: ignore[type-arg]
    """The detector over every stored prediction at once, in scoring order, with no database state."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(predictions.c.model_version, predictions.c.churn_probability, predictions.c.scored_at).order_by(
                predictions.c.scored_at, predictions.c.event_id
            )
        ).all()
    return advance(
        {},
        versions=[r[0] for r in rows],
        values=np.array([r[1] for r in rows]),
        times=np.array([as_utc(r[2]).timestamp() for r in rows]),
    )


def consume_in_new_process(database_url: str, until: datetime) -> int:
    code = (
        "import sys; from datetime import datetime, timedelta; "
        "from batch_monitor.early_warning.detector import run_detector; from churn_common.database import get_engine; "
        "run = run_detector(get_engine(sys.argv[1]), model_name=sys.argv[2], "
        "until=datetime.fromisoformat(sys.argv[3]), cooldown=timedelta(0)); print(run.consumed)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, database_url, MODEL_NAME, until.isoformat()],
        cwd=REPO_ROOT,
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    return int(done.stdout.strip().splitlines()[-1])


def test_restarts_consume_each_prediction_once_and_match_an_uninterrupted_run(  # type: ignore[no-untyped-def]
    database_url, engine, put_stream
) -> None:
    # GIVEN 1,200 calm predictions, then 900 during a surge of complaints, scored one by one over 5 windows
    for i in range(3):
        put_stream(window=window_at(i), n_rows=400, seed=80 + i)
    for i in range(3, 6):
        put_stream(window=window_at(i), n_rows=300, seed=80 + i, drift=COMPLAINTS_SURGE)
    expected_states, expected_shifts = uninterrupted(engine)
    assert expected_shifts, "the surge must be detectable for this test to mean anything"

    # WHEN the detector runs up to a moment inside a block, in this process
    first = run_detector(
        engine, model_name=MODEL_NAME, until=window_at(1).start + timedelta(seconds=101), cooldown=NO_COOLDOWN
    )
    # AND the process "restarts": the engine is gone, a new process continues to a moment in the surge
    dispose_engine(database_url)
    second = consume_in_new_process(database_url, window_at(4).start + timedelta(seconds=77))
    # AND a new engine here consumes the rest, and once more with nothing new
    engine = get_engine(database_url)
    third = run_detector(engine, model_name=MODEL_NAME, until=window_at(9).end, cooldown=NO_COOLDOWN)
    again = run_detector(engine, model_name=MODEL_NAME, until=window_at(9).end, cooldown=NO_COOLDOWN)

    # THEN every prediction was consumed exactly once over the three runs
    assert 0 < first.consumed < 2_100
    assert first.consumed + second + third.consumed == 2_100
    assert again.consumed == 0
    # AND the stored state is exactly the uninterrupted run's
    watermark, states = detector_states(engine, model_name=MODEL_NAME)
    assert states == expected_states
    with engine.connect() as connection:
        last = connection.execute(
            select(predictions.c.scored_at, predictions.c.event_id)
            .order_by(predictions.c.scored_at.desc(), predictions.c.event_id.desc())
            .limit(1)
        ).one()
    assert watermark is not None
    assert (watermark.scored_at, watermark.event_id) == (as_utc(last.scored_at), last.event_id)
    # AND the early warnings in the ledger are the uninterrupted run's shifts, each once
    with engine.connect() as connection:
        recorded = connection.execute(
            select(alerts.c.window_start, alerts.c.status).where(alerts.c.kind == "early_warning")
        ).all()
    assert sorted(as_utc(r.window_start).timestamp() for r in recorded) == sorted(
        s.shift.started_at for s in expected_shifts
    )
    assert {r.status for r in recorded} == {"sent"}
    # AND the surge's shift began inside the surge, upwards
    assert all(s.shift.direction == "up" for s in expected_shifts)
    assert min(s.shift.started_at for s in expected_shifts) >= window_at(3).start.timestamp() - 60


def test_a_fresh_detector_starts_at_the_recent_predictions_not_an_old_shift(engine, put_stream) -> None:  # type: ignore[no-untyped-def]
    # GIVEN a history with a surge of complaints long ago, then calm again for two windows
    for i in (0, 1, 2):
        put_stream(window=window_at(i), n_rows=400, seed=70 + i)
    put_stream(window=window_at(3), n_rows=600, seed=73, drift=COMPLAINTS_SURGE)
    for i in (4, 5):
        put_stream(window=window_at(i), n_rows=400, seed=70 + i)
    _, everything = uninterrupted(engine)
    assert any(s.shift.direction == "up" for s in everything), "the old surge must be detectable"

    # WHEN a detector with no state runs, told to start at the last 800 predictions
    first = run_detector(
        engine, model_name=MODEL_NAME, until=window_at(5).end, cooldown=NO_COOLDOWN, fresh_start_rows=800
    )

    # THEN it consumed exactly those, warned of nothing, and stands at the newest prediction
    assert first.consumed == 800
    assert first.shifts == []
    watermark, _ = detector_states(engine, model_name=MODEL_NAME)
    assert watermark is not None
    assert watermark.scored_at >= window_at(5).start
    # AND later predictions are consumed from there on, each once
    put_stream(window=window_at(6), n_rows=150, seed=76)
    later = run_detector(
        engine, model_name=MODEL_NAME, until=window_at(6).end, cooldown=NO_COOLDOWN, fresh_start_rows=800
    )
    assert later.consumed == 150


@pytest.mark.usefixtures("prefect_server")
def test_the_flow_warns_of_a_surge_before_its_window_closes(monitor_env, put_stream, engine) -> None:  # type: ignore[no-untyped-def]
    # GIVEN three calm windows, evaluated as they closed, then a surge of complaints in a window still open
    for i in range(3):
        put_stream(window=window_at(i), n_rows=400, seed=90 + i)
    monitor_windows(now=window_at(2).end + timedelta(seconds=30))
    window = window_at(3)
    surge = Window(window.start, window.start + timedelta(seconds=150))
    put_stream(window=surge, n_rows=500, seed=93, drift=COMPLAINTS_SURGE)

    # WHEN the monitor runs once the surge's predictions are past the lateness, long before the window closes
    summary = monitor_windows(now=surge.end + timedelta(seconds=31))

    # THEN no window was due, but the detector consumed the surge and an early warning went out
    assert summary.windows == []
    assert summary.detector is not None
    assert summary.detector.consumed == 500
    [warning] = summary.detector.early_warnings
    assert warning.direction == "up"
    assert warning.after > warning.before + 0.1
    assert surge.start <= warning.started_at <= warning.detected_at <= surge.end
    [sent] = summary.alerts_sent
    assert sent.kind == "early_warning"
    assert sent.subject.startswith("[churn-model] Early warning: churn probability up ")
