"""`make chaos` at a smaller size: file drops and the record simulator through the embedded local stack
(emulator over HTTP, local Lambda service, real Postgres, MLflow registry, Prefect server) while every
fault of the plan happens, then every row reconciled."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
from rich.console import Console

from infra.local.chaos.options import ChaosOptions
from infra.local.chaos.plan import FaultKind
from infra.local.chaos.run import run_chaos
from stream_scorer import handler as scorer
from stream_scorer.model_registry import registry_for
from tests.conftest import free_port

pytestmark = pytest.mark.e2e

SIZE = 5_000
RATE = 300.0  # records/s: the simulated stream lasts about 12 s, four 3-second windows
WINDOW_SECONDS = 3
LATENESS_SECONDS = 2.0


@pytest.fixture
def cold_scorer() -> Iterator[None]:
    """The scorer starts like a fresh Lambda container: no model loaded from an earlier test's registry."""
    scorer._model_cache.cache_clear()
    registry_for.cache_clear()
    yield
    scorer._model_cache.cache_clear()
    registry_for.cache_clear()


def test_a_small_chaos_run_keeps_every_invariant(tmp_path, env, registered_model, postgres_server, cold_scorer) -> None:  # type: ignore[no-untyped-def]
    # GIVEN a fresh local stack on free ports, the registered model, and a Postgres server for the run's database
    env(
        LOCAL_STATE_DIR=str(tmp_path / "state"),
        LOCAL_AWS_PORT=str(free_port()),
        LOCAL_PREFECT_PORT=str(free_port()),
    )
    options = ChaosOptions(
        size=SIZE,
        rate=RATE,
        window_seconds=WINDOW_SECONDS,
        lateness_seconds=LATENESS_SECONDS,
        settle_timeout_seconds=180,
        postgres_server=postgres_server,
    )
    output = io.StringIO()

    # WHEN 5,000 rows stream through it while every planned fault happens
    result = run_chaos(options, console=Console(file=output, width=120))

    # THEN every row is scored exactly once or rejected with its reason, and nothing was dead-lettered
    assert result.run["settled"], output.getvalue()
    assert result.rows_in == SIZE
    assert result.duplicate_rows == 0
    assert result.missing == 0
    assert result.scored_unique + result.rejected == SIZE
    assert result.rejected == result.rejected_expected
    assert result.dead_lettered == {"stream_scorer": 0, "producer": 0}
    # AND every window holding predictions was evaluated exactly once, the missed ones after the restart
    assert result.windows_expected == result.windows_evaluated >= 2
    # (a window is evaluated again only when rows arrived after its evaluation, as a long file's do)
    assert result.windows_evaluated_again_without_late_rows == result.windows_never_evaluated == 0
    assert result.rows_in_evaluated_windows == result.prediction_rows
    assert result.windows_caught_up_after_monitor_restart >= 1
    # AND each kind of fault was injected at least once; the re-dropped file's records did come again
    assert set(result.faults_injected) == {str(kind) for kind in FaultKind}
    assert all(count > 0 for count in result.faults_injected.values()), str(result.faults_injected)
    assert result.faults_injected[FaultKind.MONITOR_STOPPED_WINDOWS] == 3
    assert result.fault_details["redrop_records_sent_again"] > 0
    # AND the file uploaded over another's key, the file longer than its invocations and the file dropped
    # after the stack's restart on the same database were each scored in full (none missing above)
    assert result.fault_details["overwrite_records_sent"] > 0
    assert result.fault_details["producer_invocations_cut_short"] >= 2
    assert max(result.fault_details["segments_per_file"].values()) >= 2
    assert result.fault_details["after_restart_records_sent"] > 0
    assert result.passed, result.invariants
