"""Promotion judged on live traffic, end to end: a real ``mlflow server`` over REST (SQLite store), the monitor
flow on real Prefect over SQLite and Postgres. A challenger on trial is shadow-scored; the monitor stores its
F1 beside the serving version's per window, and its live check promotes or retires it on those windows."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from sqlalchemy import Engine, select

from batch_monitor.core import Window, as_utc
from batch_monitor.evaluation.reference import load_reference
from batch_monitor.flow import monitor_windows
from batch_monitor.retraining.ledger import read_runs
from batch_monitor.retraining.live_check import judge_challenger
from churn_common.database import monitoring_windows, predictions
from churn_common.registry import configure_mlflow
from stream_scorer.model import LoadedModel
from tests.conftest import training_data_path
from tests.integration.batch_monitor.conftest import MODEL_NAME, closed_after, scored_rows, window_at
from tests.integration.batch_monitor.test_retraining import serving_decisions_with_noise
from tests.local_servers import mlflow_server
from training import Gate

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("prefect_server")]

ROWS_PER_WINDOW = 400
TRAINING_ROWS_PER_WINDOW = 300
MIN_ROWS = 20
# Shadow probabilities that decide every labelled record right (the challenger wins) or wrong (it loses).
SURE = 0.9
UNSURE = 0.1
# A gate nothing passes: registers a version without moving the serving alias, as a hand-made candidate.
UNPASSABLE = Gate(2.0, 2.0, 2.0, 2.0)


@pytest.fixture(scope="module")
def rest_registry_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("live-promotion-mlflow")
    with mlflow_server(
        backend_store_uri=f"sqlite:///{folder / 'mlflow.db'}",
        artifacts=folder / "artifacts",
        log_path=folder / "server.log",
    ) as url:
        yield url


@pytest.fixture
def serving_version(monitor_env, env, rest_registry_url: str, tmp_path) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A version trained on the server and serving; no challenger alias left by an earlier test."""
    import mlflow

    from churn_common.settings import get_settings
    from training.train import train_and_register

    shared_uri = get_settings().resolved_mlflow_uri
    env(LOCAL_STATE_DIR=str(tmp_path), MLFLOW_TRACKING_URI=rest_registry_url, MONITOR_MIN_ROWS=str(MIN_ROWS))
    load_reference.cache_clear()  # cached per (name, version): version numbers repeat across registries
    result = train_and_register(data_path=training_data_path())
    assert result.promoted, result.gate_failures
    configure_mlflow()
    with contextlib.suppress(MlflowException):
        MlflowClient().delete_registered_model_alias(MODEL_NAME, "challenger")
    yield result.version
    load_reference.cache_clear()
    mlflow.set_tracking_uri(shared_uri)
    mlflow.set_registry_uri(shared_uri)


def alias(name: str) -> str | None:
    try:
        return str(MlflowClient().get_model_version_by_alias(MODEL_NAME, name).version)
    except MlflowException:
        return None


def live_tags(version: str) -> dict[str, str]:
    tags = MlflowClient().get_model_version(MODEL_NAME, version).tags
    return {k.removeprefix("live_promotion."): v for k, v in tags.items() if k.startswith("live_promotion.")}


@pytest.fixture
def put_shadowed(batch, engine: Engine, serving_model: LoadedModel) -> Callable[..., Window]:  # type: ignore[no-untyped-def]
    """The ``index``-th window scored by ``serving`` with ``challenger`` shadow-scoring every record, labelled;
    the challenger decides each labelled record right when it ``wins``, else wrong."""

    def put(index: int, *, serving: str, challenger: str, wins: bool) -> Window:
        window = window_at(index)
        rows = scored_rows(batch(n_rows=ROWS_PER_WINDOW, seed=90 + index), model=serving_model, window=window)
        for row in rows:
            right = SURE if row["label"] == 1 else UNSURE
            row.update(
                model_version=serving,
                challenger_version=challenger,
                challenger_probability=right if wins else 1 - right,
            )
        with engine.begin() as connection:
            connection.execute(predictions.insert(), rows)
        return window

    return put


@pytest.fixture
def put_flipped_windows(env, serving_version: str, put_window, batch) -> Callable[[], None]:  # type: ignore[no-untyped-def]
    """Retraining after two windows, and two windows of the serving version whose labels all flipped: a
    challenger trained on them wins the holdout and passes the gate."""

    def put() -> None:
        env(RETRAIN_ENABLED="true", RETRAIN_AFTER_WINDOWS="2")
        for i in range(2):
            put_window(
                batch(n_rows=TRAINING_ROWS_PER_WINDOW, seed=60 + i),
                window=window_at(i),
                version=serving_version,
                relabel=lambda row: 1 - int(row["label"]),
            )

    return put


def stored_windows(engine: Engine, *, serving: str) -> list[Any]:
    query = (
        select(monitoring_windows)
        .where(monitoring_windows.c.model_version == serving, monitoring_windows.c.challenger_f1.is_not(None))
        .order_by(monitoring_windows.c.window_start)
    )
    with engine.connect() as connection:
        return list(connection.execute(query))


def test_a_retrained_challenger_goes_on_trial_and_serves_after_winning_k_live_windows(
    *, env, serving_version, put_flipped_windows, put_window, batch, put_shadowed, engine, database_url
) -> None:  # type: ignore[no-untyped-def]
    # GIVEN retraining after two windows, live promotion at its default (two windows), and two windows whose
    # labels all flipped (a challenger trained on them wins the holdout and passes the gate)
    put_flipped_windows()

    # WHEN the monitor evaluates them
    monitor_windows(now=closed_after(window_at(1)))

    # THEN the challenger is on trial: it has the challenger alias, the serving alias has not moved
    [run] = read_runs(engine)
    assert run.status == "challenging", run.reason
    assert run.origin == "retraining"
    assert "on live trial over 2 labelled windows" in (run.reason or "")
    challenger = run.challenger_version
    assert challenger is not None
    assert alias("challenger") == challenger
    assert alias("staging") == serving_version

    # WHEN two labelled windows arrive in which the shadow-scored challenger beats the serving version
    env(RETRAIN_ENABLED="false")
    live = [put_shadowed(i, serving=serving_version, challenger=challenger, wins=True) for i in (2, 3)]
    monitor_windows(now=closed_after(live[-1]))

    # THEN the monitor's check promoted it: serving alias moved, challenger alias parked on it (no shadow scoring)
    assert alias("staging") == challenger
    assert alias("challenger") == challenger
    # AND the retraining's row is finished with the decision and its evidence, F1 of both in each window
    [run] = read_runs(engine)
    assert run.status == "promoted", run.reason
    stored = stored_windows(engine, serving=serving_version)
    assert [as_utc(w.window_start) for w in stored] == [w.start for w in live]
    assert all(w.challenger_f1 > w.f1 for w in stored)
    for w in stored:
        assert f"challenger f1 {w.challenger_f1:.3f} vs serving {w.f1:.3f}" in (run.reason or "")
    assert (run.live_first_window_start, run.live_last_window_end) == (live[0].start, live[-1].end)
    assert run.live_challenger_f1 == pytest.approx(sum(w.challenger_f1 for w in stored) / 2)
    assert run.live_serving_f1 == pytest.approx(sum(w.f1 for w in stored) / 2)
    # AND the version carries the decision as tags
    tags = live_tags(challenger)
    assert tags["decision"] == "promoted"
    assert tags["serving_version"] == serving_version
    assert tags["windows"] == ",".join(w.start.isoformat() for w in live)
    assert tags["champion_f1"] == ",".join(f"{w.f1:.3f}" for w in stored)
    assert tags["challenger_f1"] == ",".join(f"{w.challenger_f1:.3f}" for w in stored)

    # WHEN the check runs again, directly and in a monitor run over a later window of the new version
    again = judge_challenger(database_url)
    put_window(batch(n_rows=TRAINING_ROWS_PER_WINDOW, seed=70), window=window_at(4), version=challenger)
    monitor_windows(now=closed_after(window_at(4)))
    # THEN nothing more happens: no second promotion, no second row
    assert again is not None
    assert again.decision is None
    assert [r.status for r in read_runs(engine)] == ["promoted"]
    assert alias("staging") == challenger
    assert alias("challenger") == challenger


@pytest.mark.parametrize(
    ("wins", "status"), [(True, "promoted"), (False, "retired")], ids=["wins-promoted", "loses-retired"]
)
def test_a_challenger_set_by_hand_is_judged_the_same_way_and_recorded(
    *, wins: bool, status: str, serving_version, put_shadowed, engine, database_url
) -> None:  # type: ignore[no-untyped-def]
    # GIVEN a second version that passes the gate, given the challenger alias by hand
    from training.train import train_and_register

    candidate = train_and_register(data_path=training_data_path(), gate=UNPASSABLE)
    assert not candidate.promoted
    assert not Gate(0.7, 0.7, 0.7, 0.7).failures(candidate.metrics)
    MlflowClient().set_registered_model_alias(MODEL_NAME, "challenger", candidate.version)

    # WHEN one labelled window shows it winning (or losing) against the serving version
    first = put_shadowed(0, serving=serving_version, challenger=candidate.version, wins=wins)
    monitor_windows(now=closed_after(first))
    # THEN one window is not enough: nothing decided, nothing recorded
    assert alias("challenger") == candidate.version
    assert alias("staging") == serving_version
    assert read_runs(engine) == []

    # WHEN a second such window is evaluated
    second = put_shadowed(1, serving=serving_version, challenger=candidate.version, wins=wins)
    monitor_windows(now=closed_after(second))

    # THEN it is promoted (or retired): the serving alias on the winner, the challenger alias parked on it
    assert alias("staging") == (candidate.version if wins else serving_version)
    assert alias("challenger") == alias("staging")
    # AND the decision is a row of its own, keyed by the live windows, and tags on the version
    [run] = read_runs(engine)
    assert (run.status, run.origin, run.challenger_version, run.serving_version) == (
        status,
        "alias",
        candidate.version,
        serving_version,
    )
    assert (run.first_window_start, run.last_window_end, run.n_windows) == (first.start, second.end, 2)
    assert run.reason is not None
    assert run.reason.startswith(f"{'won' if wins else 'lost'} 2 of 2 live windows")
    assert live_tags(candidate.version)["decision"] == status

    # WHEN the check runs again
    again = judge_challenger(database_url)
    # THEN it finds no challenger: no second decision, no second row
    assert again is not None
    assert again.decision is None
    assert len(read_runs(engine)) == 1


def test_a_challenger_whose_alias_moves_on_before_a_decision_is_superseded(
    *, serving_version, put_flipped_windows, engine, database_url
) -> None:  # type: ignore[no-untyped-def]
    # GIVEN a retrained challenger on trial
    put_flipped_windows()
    monitor_windows(now=closed_after(window_at(1)))
    [run] = read_runs(engine)
    assert run.status == "challenging", run.reason
    # WHEN someone points the challenger alias elsewhere, and the check runs
    MlflowClient().set_registered_model_alias(MODEL_NAME, "challenger", serving_version)
    judge_challenger(database_url)
    # THEN its row is closed as superseded; the aliases are left as they were set
    [run] = read_runs(engine)
    assert run.status == "superseded"
    assert alias("staging") == serving_version


def test_a_challenger_that_loses_the_holdout_is_kept_without_the_challenger_alias(
    *, env, serving_version, put_window, batch, engine
) -> None:  # type: ignore[no-untyped-def]
    # GIVEN live promotion on, and two windows labelled as the serving version decides, a fifth flipped (no
    # challenger fitted on them beats it on the holdout)
    env(RETRAIN_ENABLED="true", RETRAIN_AFTER_WINDOWS="2")
    relabel = serving_decisions_with_noise(seed=5)
    for i in range(2):
        put_window(
            batch(n_rows=TRAINING_ROWS_PER_WINDOW, seed=60 + i),
            window=window_at(i),
            version=serving_version,
            relabel=relabel,
        )
    # WHEN the monitor evaluates them and retrains
    monitor_windows(now=closed_after(window_at(1)))
    # THEN the challenger is registered and kept, with no alias: it goes on no trial
    [run] = read_runs(engine)
    assert run.status == "kept", run.reason
    assert run.challenger_version is not None
    assert alias("challenger") is None
    assert alias("staging") == serving_version
