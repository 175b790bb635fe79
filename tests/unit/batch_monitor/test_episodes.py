"""The cool-down state machine: (episode before a window, the window's verdict) -> what the ledger does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from batch_monitor.alerting.episodes import QUIET, Action, Episode, Verdict, merge_verdicts, next_action

T0 = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)
WINDOW = timedelta(minutes=5)
COOLDOWN = timedelta(minutes=30)


def replay(verdicts: list[Verdict], *, cooldown: timedelta = COOLDOWN) -> list[Action]:
    """Windows in order, the episode carried forward as the ledger rows would leave it."""
    episode, actions = QUIET, []
    for i, verdict in enumerate(verdicts):
        at = T0 + i * WINDOW
        action = next_action(episode, verdict, at=at, cooldown=cooldown)
        episode = {
            Action.NOTIFY: Episode(active=True, last_notified=at, started=episode.started or at),
            Action.SUPPRESS: episode,
            Action.RECOVER: QUIET,
            Action.NOTHING: episode,
        }[action]
        actions.append(action)
    return actions


C, K, U = Verdict.CROSSED, Verdict.CLEAR, Verdict.UNKNOWN
N, S, R, Z = Action.NOTIFY, Action.SUPPRESS, Action.RECOVER, Action.NOTHING


@pytest.mark.parametrize(
    ("verdicts", "actions"),
    [
        # three drifted windows then a clean one: one e-mail, two held back, one recovery
        ([C, C, C, K], [N, S, S, R]),
        # nothing crossed: nothing happens
        ([K, K, U, K], [Z, Z, Z, Z]),
        # a window that could not be judged neither ends nor extends the episode
        ([C, U, C, K], [N, Z, S, R]),
        # a new episode after a recovery e-mails again at once
        ([C, K, C, K], [N, R, N, R]),
        # unknown before anything happened
        ([U, C], [Z, N]),
    ],
)
def test_episodes_send_one_e_mail_hold_back_repeats_and_recover_once(verdicts, actions) -> None:  # type: ignore[no-untyped-def]
    assert replay(verdicts) == actions


def test_a_lasting_crossing_is_reminded_once_per_cool_down() -> None:
    # GIVEN a line crossed for 14 windows of 5 minutes, with a 30-minute cool-down
    actions = replay([C] * 14)
    # THEN e-mails go out at 0, 30 and 60 minutes, the rest are held back
    assert [i for i, a in enumerate(actions) if a is N] == [0, 6, 12]
    assert actions.count(S) == 11


def test_no_cool_down_e_mails_every_crossing_window() -> None:
    assert replay([C, C, C], cooldown=timedelta(0)) == [N, N, N]


def test_every_transition_is_defined() -> None:
    # GIVEN every episode and verdict WHEN decided THEN an action comes back (the mapping is total)
    for episode in (QUIET, Episode(active=True, last_notified=T0, started=T0)):
        for verdict in Verdict:
            assert next_action(episode, verdict, at=T0 + WINDOW, cooldown=COOLDOWN) in Action


@pytest.mark.parametrize(
    ("verdicts", "merged"),
    [([C, K], C), ([K, U], K), ([U, U], U), ([], U)],
)
def test_a_window_of_several_versions_crosses_when_any_of_them_does(verdicts, merged) -> None:  # type: ignore[no-untyped-def]
    assert merge_verdicts(verdicts) is merged
