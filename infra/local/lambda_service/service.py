"""The service: every poller in a thread of its own, acting as its function's role, until stopped."""

from __future__ import annotations

import logging
import threading

from infra.local.lambda_service.poller import MappingStats, Poller
from infra.local.principals import acting_as

log = logging.getLogger(__name__)

DEFAULT_STOP_TIMEOUT_SECONDS = 10.0


class LambdaService:
    """Runs every event source mapping in background threads until stopped."""

    def __init__(self) -> None:
        self._pollers: list[Poller] = []
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self.stats: dict[str, MappingStats] = {}

    def add(self, *pollers: Poller) -> None:
        """Pollers of one mapping (one per shard, say) share its name and its ``MappingStats``."""
        for poller in pollers:
            if self.stats.setdefault(poller.name, poller.stats) is not poller.stats:
                raise ValueError(f"{poller.name}: the pollers of one mapping must share its MappingStats")
            self._pollers.append(poller)

    def _run(self, poller: Poller) -> None:
        # Lambda polls and invokes with the function's execution role.
        with acting_as(poller.name):
            self._poll_until_stopped(poller)

    def _poll_until_stopped(self, poller: Poller) -> None:
        while not self._stop.is_set():
            try:
                delivered = poller.poll_once()
            except Exception:
                log.exception("%s: poll failed; retrying", poller.name)
                delivered = 0
                poller.reset()
            if not delivered and poller.idle_seconds:
                self._stop.wait(poller.idle_seconds)

    def start(self) -> None:
        for poller in self._pollers:
            name = f"esm-{poller.name}-{poller.partition}"
            thread = threading.Thread(target=self._run, args=(poller,), name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = DEFAULT_STOP_TIMEOUT_SECONDS) -> bool:
        """True when every poller thread has ended (each finishes the invocation it is in first)."""
        self._stop.set()
        for poller in self._pollers:
            poller.close()
        for thread in self._threads:
            thread.join(timeout)
        return not any(thread.is_alive() for thread in self._threads)
