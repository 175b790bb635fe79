"""A Postgres database of its own for one chaos run, dropped afterwards (killing connections is a Postgres
fault, and a fresh database makes every count in the reconciliation the run's own)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from sqlalchemy import make_url

from churn_common.database import dispose_engine
from infra.local.chaos.injectors import libpq_url
from infra.local.chaos.options import DEFAULT_POSTGRES_SERVER

MAINTENANCE_DATABASE = "postgres"
SQLALCHEMY_DRIVER = "postgresql+psycopg"
NAME_PREFIX = "churn_chaos_"


class PostgresUnavailableError(RuntimeError):
    """No Postgres server answers where the run's database was to be created."""


def postgres_server(database_url: str | None) -> str:
    """The server of ``DATABASE_URL`` when it is a Postgres one, else the local default."""
    if database_url and make_url(database_url).get_backend_name() == "postgresql":
        return database_url
    return DEFAULT_POSTGRES_SERVER


@contextmanager
def scratch_database(server_url: str) -> Iterator[str]:
    """Yields the SQLAlchemy URL of a new database on the server of ``server_url``."""
    server = make_url(server_url)
    name = f"{NAME_PREFIX}{uuid.uuid4().hex[:10]}"
    maintenance = libpq_url(server.set(database=MAINTENANCE_DATABASE).render_as_string(hide_password=False))
    try:
        with psycopg.connect(maintenance, autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        where = server.render_as_string(hide_password=True)
        raise PostgresUnavailableError(
            f"a chaos run needs a Postgres server (DATABASE_URL or --postgres); {where} did not answer: {exc}"
        ) from exc
    url = server.set(drivername=SQLALCHEMY_DRIVER, database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        dispose_engine(url)
        with psycopg.connect(maintenance, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
