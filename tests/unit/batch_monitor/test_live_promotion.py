"""When a challenger on live trial takes the serving alias, is retired, or waits for more labelled windows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from batch_monitor.core import Window
from batch_monitor.retraining.challenger import aliases_after_holdout
from batch_monitor.retraining.live_promotion import LiveVerdict, LiveWindow, decide_live_promotion
from churn_common.settings import Settings

SERVING = "3"
CHALLENGER = "4"
START = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)
GATE_FAILURE = "recall 0.600 < 0.70"


def live_window(
    index: int,
    *,
    f1: float | None,
    challenger_f1: float | None,
    serving: str = SERVING,
    challenger: str | None = CHALLENGER,
) -> LiveWindow:
    start = START + timedelta(minutes=5 * index)
    return LiveWindow(
        window=Window(start, start + timedelta(minutes=5)),
        model_version=serving,
        challenger_version=challenger,
        f1=f1,
        challenger_f1=challenger_f1,
    )


def won(index: int) -> LiveWindow:
    return live_window(index, f1=0.70, challenger_f1=0.80)


def lost(index: int) -> LiveWindow:
    return live_window(index, f1=0.80, challenger_f1=0.70)


def tied(index: int) -> LiveWindow:
    return live_window(index, f1=0.75, challenger_f1=0.75)


def decide(windows: list[LiveWindow], *, required: int = 2, gate_failures: tuple[str, ...] = ()):  # type: ignore[no-untyped-def]
    return decide_live_promotion(
        windows, serving_version=SERVING, challenger_version=CHALLENGER, required=required, gate_failures=gate_failures
    )


def test_a_challenger_that_wins_each_of_the_last_k_windows_and_passes_the_gate_is_promoted() -> None:
    # GIVEN a challenger that beat the serving version's F1 in two labelled windows
    windows = [won(0), won(1)]
    # WHEN the decision needs two
    decision = decide(windows)
    # THEN it is promoted on exactly those windows, and the reason lists both F1 figures of each
    assert decision.verdict is LiveVerdict.PROMOTE
    assert decision.final
    assert [w.window for w in decision.windows] == [w.window for w in windows]
    assert decision.reason.startswith("won 2 of 2 live windows, passes the gate")
    for w in windows:
        assert f"{w.window.start.isoformat()} challenger f1 0.800 vs serving 0.700" in decision.reason
    assert decision.serving_f1 == pytest.approx(0.70)
    assert decision.challenger_f1 == pytest.approx(0.80)


def test_a_challenger_that_loses_each_of_the_last_k_windows_is_retired() -> None:
    decision = decide([lost(0), lost(1)])
    assert decision.verdict is LiveVerdict.RETIRE
    assert decision.final
    assert decision.reason.startswith("lost 2 of 2 live windows")


def test_winning_every_window_without_passing_the_gate_is_no_promotion() -> None:
    # GIVEN a challenger that wins live, but whose holdout figures fail the gate
    decision = decide([won(0), won(1)], gate_failures=(GATE_FAILURE,))
    # THEN it is not promoted, and the decision stays open
    assert decision.verdict is LiveVerdict.GATE_FAILED
    assert not decision.final
    assert GATE_FAILURE in decision.reason


@pytest.mark.parametrize(
    "windows",
    [
        [won(0), lost(1)],
        [lost(0), won(1)],
        [won(0), tied(1)],
        [lost(0), tied(1)],
        [tied(0), tied(1)],
        [won(0)],
        [],
    ],
    ids=["won-then-lost", "lost-then-won", "won-and-tied", "lost-and-tied", "both-tied", "one-of-two", "none"],
)
def test_mixed_tied_or_too_few_windows_wait(windows: list[LiveWindow]) -> None:
    decision = decide(windows)
    assert decision.verdict is LiveVerdict.WAIT
    assert not decision.final


def test_a_tie_is_not_a_win_even_by_a_hair() -> None:
    # GIVEN the challenger equal to the serving version in one window and better by 0.001 in the other
    decision = decide([tied(0), live_window(1, f1=0.750, challenger_f1=0.751)])
    # THEN it waits: only strictly better counts
    assert decision.verdict is LiveVerdict.WAIT
    assert "1 won, 0 lost, 1 tied of 2" in decision.reason


def test_windows_without_both_f1_figures_do_not_count() -> None:
    # GIVEN two won windows, and a later one whose labels have not arrived (no F1 for one or both)
    windows = [
        won(0),
        won(1),
        live_window(2, f1=None, challenger_f1=0.9),
        live_window(3, f1=0.1, challenger_f1=None),
    ]
    # THEN the labelled two decide
    decision = decide(windows)
    assert decision.verdict is LiveVerdict.PROMOTE
    assert [w.window.start for w in decision.windows] == [windows[0].window.start, windows[1].window.start]


def test_windows_of_other_versions_are_ignored() -> None:
    # GIVEN lost windows under another serving version, another challenger, and with no challenger at all
    windows = [
        live_window(0, f1=0.9, challenger_f1=0.1, serving="2"),
        live_window(1, f1=0.9, challenger_f1=0.1, challenger="5"),
        live_window(2, f1=0.9, challenger_f1=None, challenger=None),
        won(3),
    ]
    # THEN only this pair's window counts: one of two, so it waits
    decision = decide(windows)
    assert decision.verdict is LiveVerdict.WAIT
    assert decision.reason.startswith("1 of 2 labelled live windows")


def test_only_the_last_k_windows_count_in_any_order() -> None:
    # GIVEN an early loss, then two wins, given newest first
    windows = [won(2), won(1), lost(0)]
    # THEN the last two decide: promoted
    assert decide(windows).verdict is LiveVerdict.PROMOTE
    # AND with a loss after the wins, the last two are mixed: it waits
    assert decide([won(0), won(1), lost(2)]).verdict is LiveVerdict.WAIT


def test_one_window_may_decide_when_k_is_one() -> None:
    assert decide([lost(0), won(1)], required=1).verdict is LiveVerdict.PROMOTE


def test_k_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        decide([won(0)], required=0)


@pytest.mark.parametrize(
    ("live_windows", "wins", "aliases"),
    [
        (2, True, ["challenger"]),
        (2, False, []),
        (0, True, ["challenger", "staging"]),
        (0, False, ["challenger"]),
    ],
    ids=["live-winner-on-trial", "live-loser-no-alias", "holdout-winner-serves", "holdout-loser-challenger"],
)
def test_aliases_after_the_holdout(live_windows: int, wins: bool, aliases: list[str]) -> None:
    settings = Settings(PROMOTION_LIVE_WINDOWS=live_windows)  # type: ignore[call-arg]
    assert aliases_after_holdout(wins=wins, settings=settings) == aliases


def test_live_promotion_is_on_by_default_over_two_windows() -> None:
    assert Settings().promotion_live_windows == 2  # type: ignore[call-arg]
