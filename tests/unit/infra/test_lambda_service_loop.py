"""The Lambda service's loop, with stand-in pollers: it runs any ``Poller`` alike, no AWS needed."""

from __future__ import annotations

import threading
import time

import pytest

from infra.local.lambda_service import LambdaService, MappingStats, Poller
from infra.local.principals import current_principal

WAIT_SECONDS = 10


class FakePoller:
    """Delivers what it is given, fails where told to, and records what the service asked of it."""

    def __init__(self, name: str, *, outcomes: list[int | Exception], stats: MappingStats | None = None) -> None:
        self.name, self.partition, self.idle_seconds = name, "fake", 0.01
        self.stats = stats or MappingStats()
        self.outcomes = outcomes
        self.principals: list[str] = []
        self.resets = 0
        self.closed = threading.Event()
        self.done = threading.Event()

    def poll_once(self) -> int:
        self.principals.append(current_principal())
        if not self.outcomes:
            self.done.set()
            return 0
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def reset(self) -> None:
        self.resets += 1

    def close(self) -> None:
        self.closed.set()


def test_a_failed_poll_resets_the_poller_and_polling_goes_on_as_the_function() -> None:
    # GIVEN a poller whose second poll raises
    poller = FakePoller("scorer", outcomes=[3, RuntimeError("iterator expired"), 2])
    as_protocol: Poller = poller  # what a type checker holds the stand-in to
    service = LambdaService()
    service.add(as_protocol)
    # WHEN the service runs until the poller has nothing left
    service.start()
    try:
        assert poller.done.wait(WAIT_SECONDS)
    finally:
        assert service.stop()
    # THEN it was reset once, kept being polled, every poll made as the function, and stop closed it
    assert poller.resets == 1
    assert set(poller.principals) == {"scorer"}
    assert poller.closed.is_set()
    assert service.stats == {"scorer": poller.stats}


def test_pollers_of_one_mapping_share_its_stats() -> None:
    shared = MappingStats()
    service = LambdaService()
    service.add(FakePoller("scorer", outcomes=[], stats=shared), FakePoller("scorer", outcomes=[], stats=shared))
    assert service.stats == {"scorer": shared}
    with pytest.raises(ValueError, match="share"):
        service.add(FakePoller("scorer", outcomes=[]))


def test_stop_ends_a_poller_waiting_in_its_back_off() -> None:
    # GIVEN a poller that blocks until it is closed, as a Kinesis poller does in a retry back-off
    poller = FakePoller("scorer", outcomes=[])
    started = threading.Event()

    def blocked() -> int:
        started.set()
        poller.closed.wait(WAIT_SECONDS)
        return 0

    poller.poll_once = blocked  # type: ignore[method-assign]
    service = LambdaService()
    service.add(poller)
    service.start()
    assert started.wait(WAIT_SECONDS)
    # WHEN the service stops THEN the poller's thread ends well before its wait would have
    begun = time.monotonic()
    assert service.stop(timeout=WAIT_SECONDS)
    assert time.monotonic() - begun < WAIT_SECONDS / 2
