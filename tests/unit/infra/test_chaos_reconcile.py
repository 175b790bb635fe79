"""Reconciliation of a chaos run: each invariant holds on a clean run and fails on the fault it guards."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from infra.local.chaos.reconcile import ChaosResult, InputCounts, StoredCounts, reconcile

T0 = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)
WINDOWS = [T0 + timedelta(seconds=5 * i) for i in range(4)]
INPUTS = InputCounts(file_rows=300, malformed_file_rows=15, simulated_records=690, poison_records=10)
FAULTS = {"put_records_entry_failed": 40, "database_connection_killed": 2, "poison_record": 10}


def stored(**changes: Any) -> StoredCounts:
    """What a clean run stores: 975 records, 25 rejections, each window evaluated once with all its rows."""
    values: dict[str, Any] = {
        "prediction_rows": 975,
        "scored_unique": 975,
        "rejected_by_scorer": 10,
        "rejected_by_producer": 15,
        "records_by_window": dict.fromkeys(WINDOWS, 975 // 4) | {WINDOWS[-1]: 975 - 3 * (975 // 4)},
        "rows_when_evaluated": {(w, "1"): 975 // 4 for w in WINDOWS} | {(WINDOWS[-1], "1"): 975 - 3 * (975 // 4)},
    }
    return StoredCounts(**(values | changes))


def result(counts: StoredCounts, *, evaluations: Counter | None = None, **options: Any) -> ChaosResult:
    return reconcile(
        INPUTS,
        counts,
        evaluations=evaluations if evaluations is not None else Counter((w, "1") for w in WINDOWS),
        caught_up=3,
        faults_injected=options.get("faults", FAULTS),
        fault_details={},
        dead_lettered=options.get("dead_lettered", {"stream_scorer": 0, "producer": 0}),
        errors=options.get("errors", []),
        settled=options.get("settled", True),
        run={},
    )


def test_a_clean_run_keeps_every_invariant() -> None:
    clean = result(stored())
    assert clean.passed, clean.invariants
    assert (clean.rows_in, clean.scored_unique, clean.rejected, clean.duplicate_rows, clean.missing) == (
        1000,
        975,
        25,
        0,
        0,
    )
    assert (clean.windows_expected, clean.windows_evaluated) == (4, 4)
    assert clean.rows_scored_after_their_window_was_evaluated == 0


@pytest.mark.parametrize(
    ("counts", "broken"),
    [
        pytest.param(stored(prediction_rows=980), "no_duplicate_rows", id="a record stored twice"),
        pytest.param(stored(scored_unique=974, prediction_rows=974), "none_missing", id="a record lost"),
        pytest.param(
            stored(scored_unique=974, prediction_rows=974, rejected_by_scorer=11),
            "rejected_exactly_the_bad_rows",
            id="a good record rejected",
        ),
        pytest.param(
            stored(rows_when_evaluated={(w, "1"): 1 for w in WINDOWS[:3]}),
            "each_window_evaluated_exactly_once",
            id="a window never evaluated",
        ),
    ],
)
def test_each_invariant_fails_on_what_it_guards(counts: StoredCounts, broken: str) -> None:
    outcome = result(counts)
    assert not outcome.passed
    assert not outcome.invariants[broken]


def test_a_window_evaluated_twice_breaks_the_window_invariant() -> None:
    evaluations = Counter((w, "1") for w in WINDOWS) + Counter([(WINDOWS[1], "1")])
    outcome = result(stored(), evaluations=evaluations)
    assert outcome.windows_evaluated_more_than_once == 1
    assert not outcome.invariants["each_window_evaluated_exactly_once"]


def test_dead_letters_and_a_fault_that_never_happened_fail_the_run() -> None:
    assert not result(stored(), dead_lettered={"stream_scorer": 1, "producer": 0}).invariants["nothing_dead_lettered"]
    assert not result(stored(), faults={**FAULTS, "database_connection_killed": 0}).invariants["every_fault_injected"]


def test_a_run_that_did_not_settle_or_whose_worker_failed_fails() -> None:
    assert not result(stored(), settled=False).invariants["run_completed"]
    assert not result(stored(), errors=["simulator: TimeoutError()"]).passed


def test_rows_that_came_after_their_window_was_evaluated_are_counted() -> None:
    late = stored(rows_when_evaluated={(w, "1"): 200 for w in WINDOWS})
    assert result(late).rows_scored_after_their_window_was_evaluated == 975 - 4 * 200


def test_a_clean_run_has_every_prediction_in_an_evaluated_window() -> None:
    clean = result(stored())
    assert clean.invariants["every_prediction_in_an_evaluated_window"]
    assert clean.rows_in_evaluated_windows == clean.prediction_rows == 975


def test_a_window_evaluated_before_all_its_rows_came_breaks_the_prediction_invariant() -> None:
    # GIVEN a window whose stored evaluation counted 200 of its 243 records (it was never re-opened)
    partial = stored(rows_when_evaluated={(w, "1"): 243 for w in WINDOWS[:3]} | {(WINDOWS[3], "1"): 246 - 46})
    outcome = result(partial)
    # THEN the evaluated windows' rows fall short of the predictions and the run fails on it
    assert outcome.rows_in_evaluated_windows == 929
    assert not outcome.invariants["every_prediction_in_an_evaluated_window"]
    assert not outcome.passed


def test_a_window_evaluated_again_after_late_rows_keeps_the_window_invariant() -> None:
    # GIVEN window 1 evaluated twice, and rows of it scored after it had closed (they re-opened it)
    evaluations = Counter((w, "1") for w in WINDOWS) + Counter([(WINDOWS[1], "1")])
    outcome = result(stored(windows_scored_after_closing=frozenset({WINDOWS[1]})), evaluations=evaluations)
    # THEN the second evaluation is accounted for by the late rows and the run passes
    assert (outcome.windows_evaluated_more_than_once, outcome.windows_evaluated_again_without_late_rows) == (1, 0)
    assert outcome.windows_scored_after_closing == 1
    assert outcome.passed, outcome.invariants
