"""Reconciliation of a chaos run: what went in against what the pipeline kept, counted by the database and
read from the producer's manifests, then checked against the invariants.

Every input row must end scored exactly once or rejected with its reason: ``missing = rows_in -
scored_unique - rejected`` and ``duplicate_rows`` (prediction rows beyond one per record) must be 0, the
rejections must be exactly the bad rows that were put in, every window holding predictions must have been
evaluated exactly once (again only if rows were scored after it closed, which re-open it), and every stored
prediction must be in exactly one evaluated window: the evaluated windows' rows add up to the predictions.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Engine, func, select

from batch_monitor import Window, as_utc, bucket_expression
from churn_common.database import monitoring_windows, predictions, rejected_records
from producer import Manifest

EvaluationKey = tuple[datetime, str]  # window start, model version


class InputCounts(BaseModel):
    """What was put in, known independently of the pipeline (each dropped file counts once)."""

    model_config = ConfigDict(frozen=True)

    file_rows: int
    malformed_file_rows: int
    simulated_records: int
    poison_records: int

    @property
    def rows_in(self) -> int:
        return self.file_rows + self.simulated_records + self.poison_records

    @property
    def rejected_expected(self) -> int:
        return self.malformed_file_rows + self.poison_records


class StoredCounts(BaseModel):
    model_config = ConfigDict(frozen=True)

    prediction_rows: int
    scored_unique: int
    rejected_by_scorer: int
    rejected_by_producer: int
    records_by_window: Mapping[datetime, int]  # distinct records per window start
    rows_when_evaluated: Mapping[EvaluationKey, int]
    # Starts of the windows holding records scored after the window closed (its end plus the lateness).
    windows_scored_after_closing: frozenset[datetime] = frozenset()
    # Per dropped file (source id): records its manifest says were sent, less the distinct records stored.
    unstored_by_source: Mapping[str, int] = {}

    @property
    def window_starts(self) -> frozenset[datetime]:
        return frozenset(self.records_by_window)

    @property
    def evaluated_windows(self) -> frozenset[EvaluationKey]:
        return frozenset(self.rows_when_evaluated)

    @property
    def rows_in_evaluated_windows(self) -> int:
        return sum(self.rows_when_evaluated.values())

    @property
    def rows_after_evaluation(self) -> int:
        """Records scored after their window was evaluated: they came later than the window's lateness."""
        return sum(
            max(0, self.records_by_window.get(start, 0) - rows) for (start, _), rows in self.rows_when_evaluated.items()
        )


def producer_rejections(manifests: Iterable[Manifest]) -> int:
    """Rows the producer rejected, each file once however often it was dropped (the same source id)."""
    by_source = {m.source_id: m.rows_rejected for m in manifests}
    return sum(by_source.values())


def stored_counts(
    engine: Engine, *, window_seconds: int, lateness_seconds: float, manifests: Iterable[Manifest]
) -> StoredCounts:
    bucket = bucket_expression(engine.dialect.name, predictions.c.event_time, window_seconds)
    with engine.connect() as connection:
        rows, unique = connection.execute(
            select(func.count(), func.count(func.distinct(predictions.c.record_id)))
        ).one()
        scorer_rejected = connection.execute(select(func.count()).select_from(rejected_records)).scalar_one()
        buckets = connection.execute(
            select(
                bucket, func.count(func.distinct(predictions.c.record_id)), func.max(predictions.c.scored_at)
            ).group_by(bucket)
        ).all()
        evaluated = connection.execute(
            select(monitoring_windows.c.window_start, monitoring_windows.c.model_version, monitoring_windows.c.n_rows)
        ).all()
        per_source = dict(
            connection.execute(
                select(predictions.c.source_id, func.count(func.distinct(predictions.c.record_id))).group_by(
                    predictions.c.source_id
                )
            ).all()
        )
    sent = {m.source_id: m.records_sent for m in manifests}
    return StoredCounts(
        prediction_rows=int(rows),
        scored_unique=int(unique),
        rejected_by_scorer=int(scorer_rejected),
        rejected_by_producer=producer_rejections(manifests),
        records_by_window={Window.of_bucket(int(b), seconds=window_seconds).start: int(n) for b, n, _ in buckets},
        rows_when_evaluated={(as_utc(r.window_start), r.model_version): int(r.n_rows) for r in evaluated},
        unstored_by_source={
            source: records - int(per_source.get(source, 0))
            for source, records in sent.items()
            if records != int(per_source.get(source, 0))
        },
        windows_scored_after_closing=frozenset(
            window.start
            for window, last in ((Window.of_bucket(int(b), seconds=window_seconds), last) for b, _, last in buckets)
            if as_utc(last) >= window.end + timedelta(seconds=lateness_seconds)
        ),
    )


class ChaosResult(BaseModel):
    """What ``.local/bench/chaos.json`` holds."""

    passed: bool
    invariants: dict[str, bool]
    rows_in: int
    scored_unique: int
    rejected: int
    duplicate_rows: int
    missing: int
    windows_expected: int
    windows_evaluated: int
    faults_injected: dict[str, int]
    rejected_expected: int
    rejected_by_producer: int
    rejected_by_scorer: int
    prediction_rows: int
    windows_evaluated_more_than_once: int
    windows_scored_after_closing: int
    windows_evaluated_again_without_late_rows: int
    rows_in_evaluated_windows: int
    windows_never_evaluated: int
    windows_evaluated_without_predictions: int
    windows_caught_up_after_monitor_restart: int
    rows_scored_after_their_window_was_evaluated: int
    unstored_by_source: dict[str, int]
    dead_lettered: dict[str, int]
    fault_details: dict[str, Any]
    run: dict[str, Any]


def reconcile(
    inputs: InputCounts,
    stored: StoredCounts,
    *,
    evaluations: Counter[EvaluationKey],
    caught_up: int,
    faults_injected: Mapping[str, int],
    fault_details: Mapping[str, Any],
    dead_lettered: Mapping[str, int],
    errors: Sequence[str],
    settled: bool,
    run: Mapping[str, Any],
) -> ChaosResult:
    rejected = stored.rejected_by_producer + stored.rejected_by_scorer
    missing = inputs.rows_in - stored.scored_unique - rejected
    duplicate_rows = stored.prediction_rows - stored.scored_unique
    evaluated_starts = {start for start, _ in stored.evaluated_windows}
    never_evaluated = stored.window_starts - evaluated_starts
    without_predictions = evaluated_starts - stored.window_starts
    more_than_once = sum(1 for times in evaluations.values() if times > 1)
    again_without_late_rows = sum(
        1 for (start, _), times in evaluations.items() if times > 1 and start not in stored.windows_scored_after_closing
    )
    not_by_a_run = stored.evaluated_windows - set(evaluations)
    invariants = {
        "run_completed": settled and not errors,
        "no_duplicate_rows": duplicate_rows == 0,
        "none_missing": missing == 0 and not stored.unstored_by_source,
        "rejected_exactly_the_bad_rows": rejected == inputs.rejected_expected,
        "each_window_evaluated_exactly_once": not never_evaluated
        and not without_predictions
        and again_without_late_rows == 0
        and not not_by_a_run
        and len(stored.evaluated_windows) == len(stored.window_starts),
        "every_prediction_in_an_evaluated_window": stored.rows_in_evaluated_windows == stored.prediction_rows
        and stored.rows_after_evaluation == 0,
        "nothing_dead_lettered": not any(dead_lettered.values()),
        "every_fault_injected": all(count > 0 for count in faults_injected.values()),
    }
    return ChaosResult(
        passed=all(invariants.values()),
        invariants=invariants,
        rows_in=inputs.rows_in,
        scored_unique=stored.scored_unique,
        rejected=rejected,
        duplicate_rows=duplicate_rows,
        missing=missing,
        windows_expected=len(stored.window_starts),
        windows_evaluated=len(stored.evaluated_windows),
        faults_injected=dict(faults_injected),
        rejected_expected=inputs.rejected_expected,
        rejected_by_producer=stored.rejected_by_producer,
        rejected_by_scorer=stored.rejected_by_scorer,
        prediction_rows=stored.prediction_rows,
        windows_evaluated_more_than_once=more_than_once,
        windows_scored_after_closing=len(stored.windows_scored_after_closing),
        windows_evaluated_again_without_late_rows=again_without_late_rows,
        rows_in_evaluated_windows=stored.rows_in_evaluated_windows,
        windows_never_evaluated=len(never_evaluated),
        windows_evaluated_without_predictions=len(without_predictions),
        windows_caught_up_after_monitor_restart=caught_up,
        rows_scored_after_their_window_was_evaluated=stored.rows_after_evaluation,
        unstored_by_source=dict(stored.unstored_by_source),
        dead_lettered=dict(dead_lettered),
        fault_details=dict(fault_details),
        run={**run, "settled": settled, "errors": list(errors)},
    )
