"""Grafana's database login reads the pipeline's tables and cannot change them (real Postgres)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy.engine import make_url

from churn_common.database import get_engine
from infra.docker.entrypoint import ensure_readonly_role, scram_sha256_verifier

pytestmark = pytest.mark.integration


@pytest.fixture
def role_name(postgres_url: str, postgres_server: str) -> Iterator[str]:
    name = f"churn_reader_{uuid.uuid4().hex[:8]}"
    yield name
    database = make_url(postgres_url).database
    with psycopg.connect(postgres_server.rsplit("/", 1)[0] + f"/{database}", autocommit=True) as conn:
        conn.execute(f'DROP OWNED BY "{name}"')
        conn.execute(f'DROP ROLE IF EXISTS "{name}"')


def _owner_env(postgres_url: str, role: str, password: str) -> dict[str, str]:
    url = make_url(postgres_url)
    return {
        "DATABASE_HOST": url.host or "127.0.0.1",
        "DATABASE_PORT": str(url.port or 5432),
        "DATABASE_NAME": url.database or "",
        "DATABASE_USER": url.username or "postgres",
        "DATABASE_PASSWORD": "trusted-locally",
        "DATABASE_SSLMODE": "disable",
        "READONLY_ROLE_NAME": role,
        "READONLY_ROLE_PASSWORD": password,
    }


def _connect_as(postgres_url: str, role: str) -> psycopg.Connection:
    url = make_url(postgres_url)
    return psycopg.connect(host=url.host, port=url.port, dbname=url.database, user=role, autocommit=True)


def test_reader_selects_but_cannot_write(postgres_url: str, role_name: str) -> None:
    # GIVEN the pipeline's tables and the read-only login kept by the worker's entrypoint (twice: idempotent)
    get_engine(postgres_url)
    env = _owner_env(postgres_url, role_name, "first-password")
    ensure_readonly_role(env)
    ensure_readonly_role({**env, "READONLY_ROLE_PASSWORD": "second-password"})

    with _connect_as(postgres_url, role_name) as reader:
        # WHEN it reads THEN it sees the tables
        assert reader.execute("SELECT count(*) FROM predictions").fetchone() == (0,)
        # WHEN it tries to write THEN the server refuses
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            reader.execute("DELETE FROM alerts")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            reader.execute("BEGIN READ WRITE; DELETE FROM alerts; COMMIT")
        reader.execute("ROLLBACK")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            reader.execute("BEGIN READ WRITE; CREATE TABLE sneaky (x int); COMMIT")


def test_tables_created_later_are_readable_too(postgres_url: str, postgres_server: str, role_name: str) -> None:
    # GIVEN the login kept before the owner creates a new table
    get_engine(postgres_url)
    ensure_readonly_role(_owner_env(postgres_url, role_name, "pw"))
    url = make_url(postgres_url)
    with psycopg.connect(host=url.host, port=url.port, dbname=url.database, user=url.username, autocommit=True) as c:
        c.execute("CREATE TABLE added_later (x int)")
        c.execute("INSERT INTO added_later VALUES (7)")

    # WHEN the reader queries it THEN the default privileges let it
    with _connect_as(postgres_url, role_name) as reader:
        assert reader.execute("SELECT x FROM added_later").fetchone() == (7,)


def test_the_password_is_sent_as_the_verifier_postgres_itself_computes(postgres_url: str, role_name: str) -> None:
    # GIVEN Postgres hashing a clear-text password itself
    url = make_url(postgres_url)
    with psycopg.connect(host=url.host, port=url.port, dbname=url.database, user=url.username, autocommit=True) as c:
        c.execute("SET password_encryption = 'scram-sha-256'")
        c.execute(f"CREATE ROLE \"{role_name}\" LOGIN PASSWORD 'clear text'")
        stored = c.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (role_name,)).fetchone()[0]

    # WHEN our verifier is computed with the same salt and iterations
    import base64

    iterations, salt = stored.removeprefix("SCRAM-SHA-256$").split("$")[0].split(":")
    ours = scram_sha256_verifier("clear text", salt=base64.b64decode(salt), iterations=int(iterations))

    # THEN it is byte for byte what Postgres stores, so a login with the clear text will succeed
    assert ours == stored
    assert scram_sha256_verifier("clear text") != stored
