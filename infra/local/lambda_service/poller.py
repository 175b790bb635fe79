"""The one shape every event source poller has, so that the service runs them all alike."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass
class MappingStats:
    """Counters of one event source mapping, shared by all of its pollers."""

    invocations: int = 0
    errors: int = 0
    records: int = 0
    dead_lettered: int = 0
    timeouts: int = 0


class Poller(Protocol):
    """One poller of an event source mapping, run in its own thread by ``LambdaService``."""

    @property
    def name(self) -> str:
        """The function's name: the poller acts as its execution role."""
        ...

    @property
    def partition(self) -> str:
        """Which part of the source this poller reads (a shard id), named in its thread's name."""
        ...

    @property
    def stats(self) -> MappingStats: ...

    @property
    def idle_seconds(self) -> float:
        """How long to pause after a poll that delivered nothing (0 when the poll itself waits)."""
        ...

    def poll_once(self) -> int:
        """Fetch and deliver at most one batch; the number of records delivered."""
        ...

    def reset(self) -> None:
        """After a failed poll: start the next one afresh."""
        ...

    def close(self) -> None:
        """The service is stopping: end any wait (a retry back-off) at once."""
        ...
