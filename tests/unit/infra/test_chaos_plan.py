"""The chaos run's fault plan: reproducible from its seed, faults at the rates the run promises, and a
workload that adds up to the requested size."""

from __future__ import annotations

from collections import Counter

import pytest

from churn_common.wire import decode_batch
from infra.local.chaos.plan import (
    DATABASE_FAULT_RATE,
    MIN_SIZE,
    POISON_RATE,
    PUT_ENTRY_FAILURE_RATE,
    THROTTLE_ERRORS,
    FaultPlan,
    PoisonKind,
    Workload,
)
from infra.local.chaos.poison import poison_payload

DRAWS = 20_000


def test_the_same_seed_and_size_give_the_same_plan() -> None:
    # WHEN a plan is built twice from one seed, and once from another
    first, again, other = (FaultPlan.build(seed=s, size=50_000) for s in (3, 3, 4))
    # THEN the first two agree on every moment, including the per-ordinal draws; the third does not
    assert first == again
    assert [first.put_entry_error(n) for n in range(1, 500)] == [again.put_entry_error(n) for n in range(1, 500)]
    assert [first.kills_connection(n) for n in range(1, 500)] == [again.kills_connection(n) for n in range(1, 500)]
    assert other != first


@pytest.mark.parametrize("size", [MIN_SIZE, 6_000, 100_000, 123_457])
def test_the_workload_adds_up_to_the_size_with_one_percent_poison(size: int) -> None:
    workload = Workload.of_size(size)
    assert workload.rows_in == size
    assert workload.poison_records == round(size * POISON_RATE)
    assert len(workload.file_rows) >= 1
    assert workload.simulated_records > sum(workload.file_rows)


def test_a_size_too_small_for_every_fault_is_refused() -> None:
    with pytest.raises(ValueError, match="at least"):
        Workload.of_size(MIN_SIZE - 1)


def test_about_a_fifth_of_put_records_entries_fail_with_throttling_codes() -> None:
    plan = FaultPlan.build(seed=11, size=10_000)
    codes = Counter(plan.put_entry_error(n) for n in range(1, DRAWS + 1))
    failed = DRAWS - codes[None]
    assert abs(failed / DRAWS - PUT_ENTRY_FAILURE_RATE) < 0.01
    assert set(codes) - {None} == set(THROTTLE_ERRORS)


def test_about_two_percent_of_invocations_lose_their_connection_and_an_early_one_surely_does() -> None:
    plan = FaultPlan.build(seed=12, size=10_000)
    killed = [n for n in range(1, DRAWS + 1) if plan.kills_connection(n)]
    assert abs(len(killed) / DRAWS - DATABASE_FAULT_RATE) < 0.004
    assert plan.kills_connection(plan.first_database_fault)
    assert plan.first_database_fault <= 6


def test_poison_sits_between_simulated_records_in_every_kind() -> None:
    plan = FaultPlan.build(seed=13, size=20_000)
    assert len(plan.poison) == plan.workload.poison_records
    assert all(1 <= n <= plan.workload.simulated_records for n in plan.poison)
    per_kind = Counter(plan.poison.values())
    assert set(per_kind) == set(PoisonKind)
    assert max(per_kind.values()) - min(per_kind.values()) <= 1


def test_every_planned_file_drop_happens_while_the_stream_runs_and_one_file_is_dropped_again() -> None:
    plan = FaultPlan.build(seed=14, size=20_000)
    assert len(plan.drop_at) == len(plan.workload.file_rows)
    assert all(0 < at < 1 for at in plan.drop_at)
    assert 0 <= plan.redropped_file < len(plan.workload.file_rows)


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        (PoisonKind.BAD_VALUES, "age_group"),
        (PoisonKind.UNDECODABLE, "undecodable payload"),
        (PoisonKind.UNKNOWN_VERSION, "unknown schema version: 2"),
    ],
)
def test_each_kind_of_poison_is_rejected_by_the_scorer_s_decoder_for_its_reason(kind: PoisonKind, reason: str) -> None:
    # WHEN a poison payload is decoded as the scorer decodes its batches
    decoded = decode_batch([poison_payload(kind, 17)])
    # THEN it is rejected, with the reason of its kind
    assert decoded.records == []
    (rejection,) = decoded.rejections
    assert reason in rejection.reason
