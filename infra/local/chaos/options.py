"""The knobs of a chaos run, with their defaults (``make chaos`` uses them all)."""

from __future__ import annotations

from dataclasses import dataclass

from infra.local.chaos.plan import DEFAULT_SEED, DEFAULT_SIZE

DEFAULT_RATE = 2_000.0
DEFAULT_WINDOW_SECONDS = 5
DEFAULT_LATENESS_SECONDS = 5.0
DEFAULT_SETTLE_TIMEOUT_SECONDS = 600.0
DEFAULT_POSTGRES_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


@dataclass(frozen=True, slots=True)
class ChaosOptions:
    size: int = DEFAULT_SIZE
    seed: int = DEFAULT_SEED
    rate: float = DEFAULT_RATE  # records per second of the simulator
    window_seconds: int = DEFAULT_WINDOW_SECONDS
    lateness_seconds: float = DEFAULT_LATENESS_SECONDS
    settle_timeout_seconds: float = DEFAULT_SETTLE_TIMEOUT_SECONDS
    postgres_server: str = DEFAULT_POSTGRES_SERVER
