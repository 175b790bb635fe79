"""Database credentials that follow a rotated Secrets Manager secret.

RDS rotates the managed master-user secret on its own schedule (every 7 days by default). A password
read once at cold start would make every new connection of a warm Lambda container or a long-running
worker fail after a rotation, while its open connections keep working. So each new connection takes
the user and password from a cached copy of the secret, and a refused connection re-reads the secret
and, when it changed, tries once more. libpq reports no SQLSTATE for a refused login, so any failed
connect may re-read; the re-reads are spaced so that a database outage does not flood Secrets Manager.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
from sqlalchemy import Engine, event

MIN_SECONDS_BETWEEN_READS = 30.0

FetchSecret = Callable[[str], str]


@dataclass(frozen=True, slots=True)
class Credentials:
    username: str
    password: str


def fetch_secret_string(secret_arn: str) -> str:
    from churn_common.aws import client

    return str(client("secretsmanager").get_secret_value(SecretId=secret_arn)["SecretString"])


class RotatingCredentials:
    """The current credentials of one secret (RDS-managed JSON: ``username``, ``password``), cached."""

    def __init__(
        self,
        secret_arn: str,
        *,
        fetch: FetchSecret = fetch_secret_string,
        min_seconds_between_reads: float = MIN_SECONDS_BETWEEN_READS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._secret_arn = secret_arn
        self._fetch = fetch
        self._min_interval = min_seconds_between_reads
        self._clock = clock
        self._lock = threading.Lock()
        self._current: Credentials | None = None
        self._read_at = float("-inf")
        self.reads = 0

    def current(self) -> Credentials:
        with self._lock:
            if self._current is None:
                self._current = self._read()
            return self._current

    def refresh(self) -> bool:
        """Re-read the secret unless it was read moments ago; True when the credentials changed."""
        with self._lock:
            if self._clock() - self._read_at < self._min_interval:
                return False
            before, self._current = self._current, self._read()
            return self._current != before

    def _read(self) -> Credentials:
        self.reads += 1
        self._read_at = self._clock()
        secret = json.loads(self._fetch(self._secret_arn))
        return Credentials(username=str(secret["username"]), password=str(secret["password"]))


def follow_secret(engine: Engine, credentials: RotatingCredentials) -> None:
    """Make every new connection of ``engine`` use the secret's current user and password."""

    @event.listens_for(engine, "do_connect")
    def _connect(dialect: Any, _record: Any, cargs: tuple[Any, ...], cparams: dict[str, Any]) -> Any:
        current = credentials.current()
        cparams.update(user=current.username, password=current.password)
        try:
            return dialect.connect(*cargs, **cparams)
        except psycopg.OperationalError:
            if not credentials.refresh():
                raise
        rotated = credentials.current()
        cparams.update(user=rotated.username, password=rotated.password)
        return dialect.connect(*cargs, **cparams)
