"""When the monitor retrains, and when a challenger replaces the serving version."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from batch_monitor.core import Thresholds, Window
from batch_monitor.retraining.decision import (
    RetrainingPolicy,
    Verdict,
    WindowQuality,
    decide_promotion,
    decide_retraining,
)

THRESHOLDS = Thresholds(drift_share=0.5, min_f1=0.7, min_precision=0.7, min_recall=0.7, min_accuracy=0.7)
GOOD = {"f1": 0.9, "precision": 0.9, "recall": 0.9, "accuracy": 0.95}
LOW_F1 = {"f1": 0.4, "precision": 0.9, "recall": 0.3, "accuracy": 0.8}
START = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)


def window(index: int, quality: dict[str, float], *, version: str = "3") -> WindowQuality:
    start = START + timedelta(minutes=5 * index)
    return WindowQuality(Window(start, start + timedelta(minutes=5)), version, quality)


def policy(*, after: int = 3, enabled: bool = True) -> RetrainingPolicy:
    return RetrainingPolicy(enabled=enabled, after_windows=after, thresholds=THRESHOLDS)


def test_n_windows_below_threshold_retrain_on_exactly_those_windows() -> None:
    # GIVEN a good window followed by three with an F1 under its minimum
    history = [window(0, GOOD), window(1, LOW_F1), window(2, LOW_F1), window(3, LOW_F1)]
    # WHEN the decision is taken with N = 3
    decision = decide_retraining(history, serving_version="3", policy=policy())
    # THEN it retrains, triggered by the last three windows
    assert decision.verdict is Verdict.RETRAIN
    assert [w.window for w in decision.windows] == [w.window for w in history[1:]]
    assert (decision.first_window_start, decision.last_window_end) == (history[1].window.start, history[3].window.end)


@pytest.mark.parametrize(
    ("history", "verdict"),
    [
        ([window(0, LOW_F1), window(1, LOW_F1)], Verdict.TOO_FEW_WINDOWS),
        ([window(0, LOW_F1), window(1, GOOD), window(2, LOW_F1), window(3, LOW_F1)], Verdict.QUALITY_OK),
        ([window(0, LOW_F1), window(1, LOW_F1), window(2, LOW_F1), window(3, GOOD)], Verdict.QUALITY_OK),
    ],
    ids=["fewer-than-n", "interrupted-by-a-good-window", "recovered"],
)
def test_no_retraining_without_n_bad_windows_in_a_row(history: list[WindowQuality], verdict: Verdict) -> None:
    assert decide_retraining(history, serving_version="3", policy=policy()).verdict is verdict


def test_windows_without_quality_and_of_other_versions_do_not_count() -> None:
    # GIVEN bad windows of the serving version, interleaved with unlabelled ones and a good one of another version
    history = [
        window(0, LOW_F1),
        window(1, {}),
        window(2, GOOD, version="2"),
        window(3, LOW_F1),
        window(4, {}),
        window(5, LOW_F1),
    ]
    # THEN only the three labelled windows of version 3 are judged, and they are all bad
    decision = decide_retraining(history, serving_version="3", policy=policy())
    assert decision.verdict is Verdict.RETRAIN
    assert [w.window.start for w in decision.windows] == [history[i].window.start for i in (0, 3, 5)]


def test_windows_used_by_an_earlier_retraining_never_count_again() -> None:
    # GIVEN three bad windows that already triggered a retraining, then two more
    history = [window(i, LOW_F1) for i in range(5)]
    used_until = history[2].window.end
    # THEN the two new ones are not enough on their own
    decision = decide_retraining(history, serving_version="3", policy=policy(), used_until=used_until)
    assert decision.verdict is Verdict.TOO_FEW_WINDOWS
    # AND a third new bad window triggers again, on the new windows only
    history.append(window(5, LOW_F1))
    decision = decide_retraining(history, serving_version="3", policy=policy(), used_until=used_until)
    assert decision.verdict is Verdict.RETRAIN
    assert decision.first_window_start == history[3].window.start


def test_disabled_policy_never_retrains() -> None:
    history = [window(i, LOW_F1) for i in range(5)]
    decision = decide_retraining(history, serving_version="3", policy=policy(enabled=False))
    assert decision.verdict is Verdict.DISABLED
    assert not decision.retrain


@pytest.mark.parametrize(
    ("challenger", "serving", "failures", "promote"),
    [
        ({"f1": 0.9}, {"f1": 0.5}, [], True),
        ({"f1": 0.5}, {"f1": 0.5}, [], False),
        ({"f1": 0.4}, {"f1": 0.5}, [], False),
        ({"f1": 0.65}, {"f1": 0.3}, ["f1 0.650 < 0.70"], False),
    ],
    ids=["better", "tie", "worse", "better-but-below-the-gate"],
)
def test_promotion_needs_a_better_f1_and_the_gate(
    challenger: dict[str, float], serving: dict[str, float], failures: list[str], promote: bool
) -> None:
    promotion = decide_promotion(challenger, serving, gate_failures=failures)
    assert promotion.promote is promote
    assert f"{challenger['f1']:.3f}" in promotion.reason
    assert f"{serving['f1']:.3f}" in promotion.reason
