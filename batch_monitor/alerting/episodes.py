"""Alert episodes and the cool-down: when a crossed line is e-mailed, held back, or reported as recovered.

An episode of a kind starts with the first window that crosses its line (an e-mail) and lasts until a window of
that kind is judged and no longer crosses (one "recovered" e-mail). Windows that cross during an episode are
recorded but e-mailed only once the cool-down has passed since the last e-mail of the episode, so a lasting
drift sends a reminder every cool-down instead of a message every window. A window in which a kind could not be
judged (too few rows, no labels and no estimate) changes nothing. Times are the windows' own (event time), so
a catch-up after downtime decides exactly as a punctual schedule would have.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum


class Verdict(StrEnum):
    CROSSED = "crossed"
    CLEAR = "clear"
    UNKNOWN = "unknown"


class Action(StrEnum):
    NOTIFY = "notify"
    SUPPRESS = "suppress"
    RECOVER = "recover"
    NOTHING = "nothing"


@dataclass(frozen=True, slots=True)
class Episode:
    """Where a kind stands before a window: in an episode or not, when the episode began and last e-mailed."""

    active: bool = False
    last_notified: datetime | None = None
    started: datetime | None = None


QUIET = Episode()


def _still_crossed(episode: Episode, at: datetime, cooldown: timedelta) -> Action:
    if episode.last_notified is None or at - episode.last_notified >= cooldown:
        return Action.NOTIFY
    return Action.SUPPRESS


def _constant(action: Action) -> Callable[[Episode, datetime, timedelta], Action]:
    return lambda _episode, _at, _cooldown: action


_TRANSITIONS: Mapping[tuple[bool, Verdict], Callable[[Episode, datetime, timedelta], Action]] = {
    (False, Verdict.CROSSED): _constant(Action.NOTIFY),
    (False, Verdict.CLEAR): _constant(Action.NOTHING),
    (False, Verdict.UNKNOWN): _constant(Action.NOTHING),
    (True, Verdict.CROSSED): _still_crossed,
    (True, Verdict.CLEAR): _constant(Action.RECOVER),
    (True, Verdict.UNKNOWN): _constant(Action.NOTHING),
}


def next_action(episode: Episode, verdict: Verdict, *, at: datetime, cooldown: timedelta) -> Action:
    """What to do with this window's verdict of a kind, given the kind's episode before it."""
    return _TRANSITIONS[(episode.active, verdict)](episode, at, cooldown)


def merge_verdicts(verdicts: list[Verdict]) -> Verdict:
    """One verdict per window and kind over its model versions: any crossing wins, then any clear judgement."""
    for verdict in (Verdict.CROSSED, Verdict.CLEAR):
        if verdict in verdicts:
            return verdict
    return Verdict.UNKNOWN
