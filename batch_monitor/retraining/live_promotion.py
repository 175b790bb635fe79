"""Whether a challenger takes the serving alias: judged on live traffic, a pure function of stored windows.

A holdout of recent records says how a challenger would have done; the windows the scorer shadow-scored it
in say how it does on what the serving version actually meets. So a challenger is promoted only after it
beat the serving version in each of the last ``required`` labelled windows both scored, and passes the gate
every served version passes. It is retired after losing each of them. Anything else waits: a window whose
labels are still arriving is evaluated again when they join, so a later run may decide differently.

Only windows whose records the serving version scored with this very challenger beside it are comparable:
windows of an earlier serving version or another challenger are left out, as are windows without both F1
figures (too few labels). A tie is neither a win nor a loss.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from batch_monitor.core import Window

F1_FORMAT = ".3f"


class LiveVerdict(StrEnum):
    PROMOTE = "promote"
    RETIRE = "retire"
    WAIT = "wait"
    # Won every window but fails the gate: it keeps its alias (the decision stays open) until one is made.
    GATE_FAILED = "gate_failed"


@dataclass(frozen=True, slots=True, kw_only=True)
class LiveWindow:
    """One stored window row: the serving version's and its challenger's F1 on the same labelled records."""

    window: Window
    model_version: str
    challenger_version: str | None
    f1: float | None
    challenger_f1: float | None

    @property
    def judged(self) -> bool:
        return self.f1 is not None and self.challenger_f1 is not None

    @property
    def won(self) -> bool:
        return self.judged and self.challenger_f1 > self.f1  # type: ignore[operator]

    @property
    def lost(self) -> bool:
        return self.judged and self.challenger_f1 < self.f1  # type: ignore[operator]

    def describe(self) -> str:
        return (
            f"{self.window.start.isoformat()} challenger f1 {self.challenger_f1:{F1_FORMAT}}"
            f" vs serving {self.f1:{F1_FORMAT}}"
        )


@dataclass(frozen=True, slots=True)
class LiveDecision:
    verdict: LiveVerdict
    serving_version: str
    challenger_version: str
    windows: tuple[LiveWindow, ...]
    reason: str

    @property
    def final(self) -> bool:
        """Promote and retire end the challenge; the others leave the aliases as they are."""
        return self.verdict in {LiveVerdict.PROMOTE, LiveVerdict.RETIRE}

    @property
    def serving_f1(self) -> float | None:
        return _mean([w.f1 for w in self.windows])

    @property
    def challenger_f1(self) -> float | None:
        return _mean([w.challenger_f1 for w in self.windows])


def _mean(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None


def comparable_windows(
    windows: Sequence[LiveWindow], *, serving_version: str, challenger_version: str
) -> list[LiveWindow]:
    """Windows of this pair with both F1 figures, oldest first."""
    return sorted(
        (
            w
            for w in windows
            if w.model_version == serving_version and w.challenger_version == challenger_version and w.judged
        ),
        key=lambda w: w.window.start,
    )


def decide_live_promotion(
    windows: Sequence[LiveWindow],
    *,
    serving_version: str,
    challenger_version: str,
    required: int,
    gate_failures: Sequence[str],
) -> LiveDecision:
    """``windows``: stored rows in any order, of any version; ``required``: how many of the latest comparable
    windows decide (at least one); ``gate_failures``: the challenger's, as :class:`training.Gate` lists them."""
    if required < 1:
        raise ValueError(f"required must be at least 1, got {required}")
    comparable = comparable_windows(windows, serving_version=serving_version, challenger_version=challenger_version)
    recent = tuple(comparable[-required:])

    def decision(verdict: LiveVerdict, reason: str) -> LiveDecision:
        return LiveDecision(verdict, serving_version, challenger_version, recent, reason)

    evidence = "; ".join(w.describe() for w in recent)
    if len(recent) < required:
        return decision(
            LiveVerdict.WAIT, f"{len(recent)} of {required} labelled live windows" + (f": {evidence}" if recent else "")
        )
    if all(w.won for w in recent):
        if gate_failures:
            return decision(
                LiveVerdict.GATE_FAILED,
                f"won {required} of {required} live windows, but fails the gate ({'; '.join(gate_failures)}): "
                + evidence,
            )
        return decision(LiveVerdict.PROMOTE, f"won {required} of {required} live windows, passes the gate: {evidence}")
    if all(w.lost for w in recent):
        return decision(LiveVerdict.RETIRE, f"lost {required} of {required} live windows: {evidence}")
    wins = sum(w.won for w in recent)
    losses = sum(w.lost for w in recent)
    return decision(
        LiveVerdict.WAIT, f"{wins} won, {losses} lost, {required - wins - losses} tied of {required}: {evidence}"
    )
