from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from tests.benchmarks.e2e_observe import (
    SCORER,
    Invocation,
    KinesisRecordSeen,
    PerRecord,
    Recorder,
    frame_category,
    iterator_age_growth,
    kinesis_record_key,
)
from tests.factories import customer_record, encoded, kinesis_event


def _invocation(started: float, age: float) -> Invocation:
    return Invocation(SCORER, started, started + 0.05, 0.01, 1, started - age)


def test_a_consumer_that_keeps_up_shows_no_iterator_age_growth() -> None:
    # GIVEN a batch a second whose last record is 0.1 to 0.3 s old, then a last batch that waited out
    # the window after the load stopped (nothing newer behind it)
    ages = [0.1, 0.3, 0.2] * 7
    invocations = [_invocation(100.0 + t, age) for t, age in enumerate(ages)]
    invocations.append(_invocation(100.0 + len(ages) + 1.2, 1.2 + 1.0))
    # WHEN the growth is estimated
    growth = iterator_age_growth(invocations, skip_seconds=0)
    # THEN the tail batch does not count and there is no trend
    assert growth is not None
    assert abs(growth["growth_s"]) < 0.2


def test_a_consumer_falling_behind_shows_growth_by_its_deficit() -> None:
    # GIVEN a consumer at two thirds of the rate while the load lasts (the age grows by a third of a
    # second each second), then the backlog worked off after the load's last record arrived at 120 s
    invocations = [_invocation(100.0 + t, 0.2 + t / 3) for t in range(20)]
    invocations += [_invocation(120.0 + t, t) for t in (2.0, 4.0)]
    # WHEN the growth is estimated over the phase
    growth = iterator_age_growth(invocations, skip_seconds=0)
    # THEN it is the deficit times the span
    assert growth is not None
    assert growth["slope_s_per_s"] == pytest.approx(1 / 3, abs=1e-3)
    assert growth["growth_s"] == pytest.approx(19 / 3, abs=0.01)


def _event(shard: str, first_sequence: int, rows: int) -> dict[str, Any]:
    return kinesis_event(
        encoded([customer_record(row=i) for i in range(1, rows + 1)]), shard_id=shard, first_sequence=first_sequence
    )


def test_the_wrapped_scorer_is_timed_to_its_return_and_records_are_keyed_like_predictions() -> None:
    # GIVEN the recorder wrapping a handler that takes some time
    recorder = Recorder()
    calls: list[dict[str, Any]] = []

    def handler(event: dict[str, Any], _context: Any) -> dict[str, Any]:
        calls.append(event)
        return {"batchItemFailures": []}

    invoke = recorder.wrap(SCORER, handler)
    event = _event("shardId-000000000001", 7, rows=3)
    # WHEN the service invokes it
    response = invoke(event, None)
    # THEN the real handler ran, and its Kinesis record is keyed as a prediction's event id minus the sub-sequence
    assert calls == [event]
    assert response == {"batchItemFailures": []}
    (invocation,) = recorder.scorer_invocations()
    assert invocation.finished >= invocation.started
    (key,) = recorder.records
    assert key == kinesis_record_key("1764139800000/shardId-000000000001:7:2")


def test_deliver_only_skips_the_handler_and_counts_user_records_afterwards() -> None:
    # GIVEN the recorder in deliver-only mode
    recorder = Recorder()
    recorder.reset(deliver_only=True)

    def handler(_event: dict[str, Any], _context: Any) -> dict[str, Any]:
        raise AssertionError("the scorer must not run in a deliver-only phase")

    invoke = recorder.wrap(SCORER, handler)
    # WHEN two aggregates of 3 and 5 records are delivered
    assert invoke(_event("shardId-000000000000", 1, rows=3), None) == {"batchItemFailures": []}
    invoke(_event("shardId-000000000000", 2, rows=5), None)
    # THEN each is counted from its own data
    assert sorted(recorder.delivered_user_records().values()) == [3, 5]
    assert recorder.delivered_kinesis_records() == 2


def test_per_record_times_are_weighted_by_user_records() -> None:
    # GIVEN two invocations, one of 1 aggregate of 3 records and one of 1 aggregate of 1 record
    recorder = Recorder()
    recorder.invocations = [Invocation(SCORER, 10.0, 10.5, 0.0, 1, 9.0), Invocation(SCORER, 20.0, 20.1, 0.0, 1, 19.5)]
    recorder.records = {}
    recorder.records["s:1"] = KinesisRecordSeen(arrival=9.0, invocation=0)
    recorder.records["s:2"] = KinesisRecordSeen(arrival=19.5, invocation=1)
    # WHEN per-record times are built from committed counts
    per_record = PerRecord.from_seen(recorder, {"s:1": 3, "s:2": 1})
    # THEN every user record carries its aggregate's arrival and its invocation's commit
    assert np.allclose(per_record.latency, [1.5, 1.5, 1.5, 0.6])
    assert np.allclose(per_record.waiting, [1.0, 1.0, 1.0, 0.5])


@pytest.mark.parametrize(
    ("filename", "category"),
    [
        ("/x/site-packages/psycopg/connection.py", "database"),
        ("/x/site-packages/xgboost/core.py", "predict"),
        ("/repo/stream_scorer/validation.py", "scorer code"),
        ("/x/threading.py", "other"),
    ],
)
def test_frames_are_attributed_by_their_file(filename: str, category: str) -> None:
    assert frame_category(filename) == category
