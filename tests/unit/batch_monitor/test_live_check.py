"""The live check's bookkeeping around the decision: the gate read from a version's run, and rows left
``challenging`` by a check interrupted between its decision and the ledger, against an in-memory registry."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import Engine

from batch_monitor.core import Window
from batch_monitor.retraining import ledger
from batch_monitor.retraining.decision import RetrainingDecision, Verdict, WindowQuality
from batch_monitor.retraining.live_check import _judge
from batch_monitor.retraining.live_registry import DECISION_TAG, REASON_TAG, gate_failures
from churn_common.database import get_engine
from churn_common.settings import Settings
from training import Gate

MODEL = "XGBoostChurnModel"
START = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)
GATE = Gate(0.7, 0.7, 0.7, 0.7)
PASSING = {"holdout_f1": 0.8, "holdout_precision": 0.8, "holdout_recall": 0.8, "holdout_accuracy": 0.9}


@dataclass
class FakeRegistry:
    """The few MlflowClient calls the live check makes, on dictionaries."""

    aliases: dict[str, str] = field(default_factory=dict)
    tags: dict[str, dict[str, str]] = field(default_factory=dict)
    runs: dict[str, str | None] = field(default_factory=dict)
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)

    def get_registered_model(self, name: str) -> Any:
        return SimpleNamespace(aliases=dict(self.aliases))

    def get_model_version(self, name: str, version: str) -> Any:
        return SimpleNamespace(run_id=self.runs.get(version), tags=dict(self.tags.get(version, {})))

    def get_run(self, run_id: str) -> Any:
        return SimpleNamespace(data=SimpleNamespace(metrics=self.metrics[run_id]))

    def set_model_version_tag(self, name: str, version: str, key: str, value: str) -> None:
        self.tags.setdefault(version, {})[key] = value

    def set_registered_model_alias(self, name: str, alias: str, version: str) -> None:
        self.aliases[alias] = version

    # No delete_registered_model_alias: the pipeline's login may move aliases, not delete them.


@pytest.fixture
def engine(tmp_path) -> Engine:  # type: ignore[no-untyped-def]
    return get_engine(f"sqlite:///{tmp_path / 'churn.db'}")


@pytest.fixture
def settings() -> Settings:
    return Settings(MODEL_NAME=MODEL, PROMOTION_LIVE_WINDOWS=2)  # type: ignore[call-arg]


def challenging_run(engine: Engine, *, serving: str, challenger: str) -> int:
    window = WindowQuality(Window(START, START + timedelta(minutes=5)), serving, {})
    run_id = ledger.claim(engine, RetrainingDecision(Verdict.RETRAIN, serving, (window,)), model_name=MODEL)
    assert run_id is not None
    ledger.finish(engine, run_id, status=ledger.RunStatus.CHALLENGING, reason="won", challenger_version=challenger)
    return run_id


def test_the_gate_reads_the_holdout_figures_of_the_versions_run() -> None:
    registry = FakeRegistry(runs={"4": "r4"}, metrics={"r4": PASSING})
    assert gate_failures(registry, model_name=MODEL, version="4", gate=GATE) == []  # type: ignore[arg-type]
    registry.metrics["r4"] = {**PASSING, "holdout_recall": 0.6}
    assert gate_failures(registry, model_name=MODEL, version="4", gate=GATE) == ["recall 0.600 < 0.70"]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("runs", "metrics", "failure"),
    [({"4": None}, {}, "no training run"), ({"4": "r4"}, {"r4": {"holdout_f1": 0.9}}, "no holdout precision")],
    ids=["no-run", "no-holdout-metrics"],
)
def test_a_version_without_holdout_figures_fails_the_gate(
    runs: dict[str, str | None], metrics: dict[str, dict[str, float]], failure: str
) -> None:
    registry = FakeRegistry(runs=runs, metrics=metrics)
    [reason] = gate_failures(registry, model_name=MODEL, version="4", gate=GATE)  # type: ignore[arg-type]
    assert failure in reason


def test_a_promotion_interrupted_before_the_ledger_is_finished_from_the_versions_tags(engine, settings) -> None:  # type: ignore[no-untyped-def]
    # GIVEN a challenger on trial whose promotion was tagged and moved the serving alias, then stopped
    run_id = challenging_run(engine, serving="3", challenger="4")
    registry = FakeRegistry(
        aliases={"staging": "4", "challenger": "4"},
        tags={"4": {DECISION_TAG: "promoted", REASON_TAG: "won 2 of 2 live windows"}},
    )
    # WHEN the check runs again
    check = _judge(engine, registry, settings=settings)  # type: ignore[arg-type]
    # THEN the row is finished as the tags say, the challenger alias stays parked on the serving version,
    # nothing judged again
    assert check.decision is None
    [closed] = check.closed
    assert (closed.id, closed.status, closed.reason) == (run_id, "promoted", "won 2 of 2 live windows")
    assert registry.aliases == {"staging": "4", "challenger": "4"}
    # AND a further run changes nothing
    again = _judge(engine, registry, settings=settings)  # type: ignore[arg-type]
    assert (again.decision, again.closed) == (None, [])
    assert [r.status for r in ledger.read_runs(engine)] == ["promoted"]


def test_a_retirement_interrupted_after_the_alias_is_finished_from_the_tags(engine, settings) -> None:  # type: ignore[no-untyped-def]
    challenging_run(engine, serving="3", challenger="4")
    registry = FakeRegistry(aliases={"staging": "3"}, tags={"4": {DECISION_TAG: "retired", REASON_TAG: "lost"}})
    _judge(engine, registry, settings=settings)  # type: ignore[arg-type]
    [run] = ledger.read_runs(engine)
    assert (run.status, run.reason) == ("retired", "lost")
    assert registry.aliases == {"staging": "3"}


def test_a_challenger_replaced_before_a_decision_is_superseded(engine, settings) -> None:  # type: ignore[no-untyped-def]
    # GIVEN a challenger on trial whose alias now names a newer version, on no live window yet
    challenging_run(engine, serving="3", challenger="4")
    registry = FakeRegistry(aliases={"staging": "3", "challenger": "5"}, runs={"5": "r5"}, metrics={"r5": PASSING})
    # WHEN the check runs
    check = _judge(engine, registry, settings=settings)  # type: ignore[arg-type]
    # THEN the old row is superseded, the new challenger waits for its windows
    [run] = ledger.read_runs(engine)
    assert run.status == "superseded"
    assert "moved to v5" in (run.reason or "")
    assert check.decision is not None
    assert check.decision.verdict == "wait"
    assert registry.aliases == {"staging": "3", "challenger": "5"}
