"""Conditional retraining end to end: the monitor flow (real Prefect) stores windows whose quality is low,
the ``retrain-model`` subflow trains a challenger on their labelled records, registers it in a real MLflow
registry and moves the serving alias only when the challenger wins on the holdout."""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from rich.console import Console
from rich.progress import Progress

from batch_monitor.evaluation.reference import load_reference
from batch_monitor.flow import monitor_windows
from batch_monitor.retraining.decision import Verdict
from batch_monitor.retraining.due import due_retraining
from batch_monitor.retraining.flow import retrain_model
from batch_monitor.retraining.ledger import read_runs
from churn_common.registry import TARGET_COLUMN, configure_mlflow
from infra.local.demo import wait_for_retraining
from stream_scorer.model import ModelCache
from tests.conftest import training_data_path
from tests.integration.batch_monitor.conftest import MODEL_NAME, closed_after, window_at

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("prefect_server")]

ROWS_PER_WINDOW = 300
LABEL_NOISE = 0.2
WAIT_WHEN_NOTHING_IS_DUE_SECONDS = 10


@pytest.fixture
def own_registry(monitor_env, env, tmp_path) -> Iterator[Any]:  # type: ignore[no-untyped-def]
    """A registry of this test's own, holding one trained version with the serving alias: promotions here
    must not move the alias other tests serve from."""
    import mlflow

    from churn_common.settings import get_settings
    from training.train import train_and_register

    shared_uri = get_settings().resolved_mlflow_uri
    env(LOCAL_STATE_DIR=str(tmp_path), MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}")
    load_reference.cache_clear()  # cached per (name, version): version numbers repeat across registries
    result = train_and_register(data_path=training_data_path())
    assert result.promoted, result.gate_failures
    configure_mlflow()
    yield result
    load_reference.cache_clear()
    mlflow.set_tracking_uri(shared_uri)  # MLflow's process-wide URI, for tests that do not configure it
    mlflow.set_registry_uri(shared_uri)


def inverted(row: dict[str, Any]) -> int:
    """Concept drift at its most blunt: every label flipped, which a model retrained on them learns."""
    return 1 - int(row["label"])


def serving_decisions_with_noise(seed: int) -> Callable[[dict[str, Any]], int]:
    """The serving version's own decisions with a fifth of them flipped at random: its quality drops below
    the minimum, yet no model can fit these labels better than it does (a challenger fitted on a few hundred
    of them does worse: 12 of 12 seeds, by 0.08 to 0.20 in F1, in a trial of this set-up)."""
    rng = np.random.default_rng(seed)
    return lambda row: int(row["churn_prediction"]) ^ int(rng.random() < LABEL_NOISE)


@pytest.fixture
def bad_windows(batch, put_window, own_registry) -> Callable[..., list[Any]]:  # type: ignore[no-untyped-def]
    """``count`` windows of reference-like customers whose labels the serving version gets wrong, from the
    ``first``-th window on."""

    def put(count: int, relabel: Callable[[dict[str, Any]], int], *, first: int = 0) -> list[Any]:
        windows = [window_at(i) for i in range(first, first + count)]
        for i, window in enumerate(windows, start=first):
            put_window(
                batch(n_rows=ROWS_PER_WINDOW, seed=60 + i), window=window, version=own_registry.version, relabel=relabel
            )
        return windows

    return put


def versions() -> list[str]:
    return sorted(str(v.version) for v in MlflowClient().search_model_versions(f"name='{MODEL_NAME}'"))


def alias(name: str) -> str | None:
    try:
        return str(MlflowClient().get_model_version_by_alias(MODEL_NAME, name).version)
    except MlflowException:
        return None


def test_a_better_challenger_replaces_the_serving_version_and_the_scorer_picks_it(
    env, own_registry, bad_windows, engine
) -> None:  # type: ignore[no-untyped-def]
    # GIVEN retraining after two windows, promoted on the holdout alone, and two windows whose labels all flipped
    env(RETRAIN_ENABLED="true", RETRAIN_AFTER_WINDOWS="2", PROMOTION_LIVE_WINDOWS="0")
    started = datetime.now(tz=UTC)
    first, second = bad_windows(2, inverted)

    # WHEN the monitor evaluates them
    summary = monitor_windows(now=closed_after(second))

    # THEN both windows raised a quality alert, and one retraining ran on exactly those windows
    assert [w.alerts for w in summary.windows] == [["quality"], ["quality"]]
    [run] = read_runs(engine)
    assert (run.serving_version, run.first_window_start, run.last_window_end) == (
        own_registry.version,
        first.start,
        second.end,
    )
    assert (run.n_train_rows, run.n_holdout_rows) == (450, 150)
    # AND the challenger beat the serving version on the holdout and was promoted
    assert run.status == "promoted", run.reason
    assert run.challenger_f1 > 0.9
    assert run.serving_f1 < 0.1
    assert alias("challenger") == alias("staging") == run.challenger_version != own_registry.version
    # AND a scorer re-resolving its alias now serves the challenger
    assert ModelCache(name=MODEL_NAME, alias="staging", refresh_seconds=0).get().version == run.challenger_version
    # AND the new version's reference is the data it was trained on (the flipped labels)
    reference = load_reference(MODEL_NAME, run.challenger_version)
    assert len(reference) == 2 * ROWS_PER_WINDOW
    original = load_reference(MODEL_NAME, own_registry.version)
    assert reference[TARGET_COLUMN].mean() > 0.5 > original[TARGET_COLUMN].mean()
    # AND its MLflow run logged both versions' holdout F1
    client = MlflowClient()
    metrics = client.get_run(client.get_model_version(MODEL_NAME, run.challenger_version).run_id).data.metrics
    assert metrics["holdout_f1"] == pytest.approx(run.challenger_f1)
    assert metrics["serving_holdout_f1"] == pytest.approx(run.serving_f1)

    # WHEN two more bad windows arrive still scored by the replaced version (a scorer that had not yet
    # re-resolved its alias) and the monitor evaluates them
    later = bad_windows(2, inverted, first=2)
    monitor_windows(now=closed_after(later[-1]))
    # THEN nothing is retrained for them: the retraining follows the version serving now
    assert len(read_runs(engine)) == 1
    # AND a caller waiting on the monitor's retraining (the demo) is not kept waiting for one
    waited = time.monotonic()
    wait_for_retraining(engine, since=started, progress=Progress(console=Console(file=io.StringIO())))
    assert time.monotonic() - waited < WAIT_WHEN_NOTHING_IS_DUE_SECONDS


def test_a_worse_challenger_is_registered_but_the_serving_version_stays(
    env, own_registry, bad_windows, engine, database_url
) -> None:  # type: ignore[no-untyped-def]
    # GIVEN retraining after two windows, judged on the holdout alone (a loser then still gets the challenger
    # alias), and two windows labelled as the serving version decides, 20 % flipped
    env(RETRAIN_ENABLED="true", RETRAIN_AFTER_WINDOWS="2", PROMOTION_LIVE_WINDOWS="0")
    first, second = bad_windows(2, serving_decisions_with_noise(seed=5))

    # WHEN the monitor evaluates them
    monitor_windows(now=closed_after(second))

    # THEN a challenger was trained and registered under its alias, lost on the holdout and was not promoted
    [run] = read_runs(engine)
    assert run.status == "kept", run.reason
    assert run.challenger_f1 is not None
    assert run.serving_f1 is not None
    assert run.challenger_f1 < run.serving_f1 < 0.7
    assert "not better" in (run.reason or "")
    assert versions() == sorted([own_registry.version, run.challenger_version])
    assert alias("challenger") == run.challenger_version
    assert alias("staging") == own_registry.version
    assert ModelCache(name=MODEL_NAME, alias="staging", refresh_seconds=0).get().version == own_registry.version

    # AND the same windows never trigger again: the decision waits for new ones, a second claim does nothing
    assert due_retraining(database_url).verdict is Verdict.TOO_FEW_WINDOWS
    again = retrain_model(own_registry.version, [first.start, second.start], [first.end, second.end])
    assert again.status == "already_claimed"
    assert len(read_runs(engine)) == 1
    assert len(versions()) == 2


def test_too_few_labelled_records_skip_retraining_with_the_reason(env, own_registry, bad_windows, engine) -> None:  # type: ignore[no-untyped-def]
    # GIVEN retraining after one window, which needs more labelled records than the window has
    env(RETRAIN_ENABLED="true", RETRAIN_AFTER_WINDOWS="1", RETRAIN_MIN_ROWS=str(ROWS_PER_WINDOW + 1))
    [window] = bad_windows(1, inverted)
    # WHEN the monitor evaluates it
    monitor_windows(now=closed_after(window))
    # THEN the retraining is recorded as skipped, and nothing was registered
    [run] = read_runs(engine)
    assert run.status == "skipped"
    assert f"{ROWS_PER_WINDOW} labelled records" in (run.reason or "")
    assert versions() == [own_registry.version]
    assert alias("challenger") is None


def test_retraining_is_off_by_default(own_registry, bad_windows, engine) -> None:  # type: ignore[no-untyped-def]
    # GIVEN the default settings and many windows the serving version gets wrong
    windows = bad_windows(4, inverted)
    # WHEN the monitor evaluates them
    summary = monitor_windows(now=closed_after(windows[-1]) + timedelta(seconds=1))
    # THEN they raise quality alerts, and nothing is retrained, recorded or registered
    assert all(w.alerts == ["quality"] for w in summary.windows)
    assert read_runs(engine) == []
    assert versions() == [own_registry.version]
    assert alias("challenger") is None
