"""New connections follow a rotated database secret (emulator's Secrets Manager, real Postgres).

The local server trusts every role, so a rotation is played as the secret moving to a new login role
while the old one is dropped: the old credentials are then refused by Postgres itself.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator

import psycopg
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from churn_common.aws import client
from churn_common.database import dispose_engine, get_engine
from churn_common.database_credentials import RotatingCredentials, follow_secret

pytestmark = pytest.mark.integration


@pytest.fixture
def login_role(postgres_server: str) -> Iterator[Callable[[], str]]:
    """Factory of login roles that may use the test database; all dropped afterwards."""
    created: list[str] = []

    def _create() -> str:
        name = f"churn_role_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(postgres_server, autocommit=True) as conn:
            conn.execute(f'CREATE ROLE "{name}" LOGIN')
        created.append(name)
        return name

    yield _create
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        for name in created:
            conn.execute(f'DROP ROLE IF EXISTS "{name}"')


def _drop_role(postgres_server: str, name: str) -> None:
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f'DROP ROLE "{name}"')


def _put_secret(arn: str | None, username: str) -> str:
    value = json.dumps({"username": username, "password": "not-checked-by-trust-auth"})
    secrets = client("secretsmanager")
    if arn is None:
        return str(secrets.create_secret(Name=f"rds-master-{uuid.uuid4().hex[:8]}", SecretString=value)["ARN"])
    secrets.put_secret_value(SecretId=arn, SecretString=value)
    return arn


def _current_user(engine) -> str:  # type: ignore[no-untyped-def]
    with engine.connect() as connection:
        return str(connection.execute(text("SELECT current_user")).scalar_one())


def test_a_rotation_is_followed_without_a_restart(aws, postgres_url: str, postgres_server: str, login_role) -> None:
    # GIVEN an engine whose connections take their login from a secret
    first = login_role()
    arn = _put_secret(None, first)
    credentials = RotatingCredentials(arn, min_seconds_between_reads=0)
    engine = create_engine(postgres_url)
    follow_secret(engine, credentials)
    assert _current_user(engine) == first

    # WHEN the secret rotates to new credentials and the old ones stop working
    second = login_role()
    _put_secret(arn, second)
    engine.dispose()
    _drop_role(postgres_server, first)

    # THEN the next connection is refused once, re-reads the secret and logs in with the new one
    assert _current_user(engine) == second
    assert credentials.reads == 2
    engine.dispose()


def test_a_database_outage_does_not_flood_secrets_manager(aws, postgres_url: str, login_role) -> None:
    # GIVEN credentials read moments ago and a server that is not there
    arn = _put_secret(None, login_role())
    credentials = RotatingCredentials(arn)
    unreachable = make_url(postgres_url).set(port=1).render_as_string(hide_password=False)
    engine = create_engine(unreachable, connect_args={"connect_timeout": 2})
    follow_secret(engine, credentials)

    # WHEN connections keep failing
    for _ in range(3):
        with pytest.raises(OperationalError):
            engine.connect()

    # THEN the failure surfaces each time and the secret was read only once
    assert credentials.reads == 1


def test_the_pipeline_engine_logs_in_with_the_secret_not_the_url(aws, env, postgres_url: str, login_role) -> None:
    # GIVEN the tables in place, a URL naming a user that does not exist, and the secret naming one that does
    get_engine(postgres_url)
    role = login_role()
    env(DATABASE_SECRET_ARN=_put_secret(None, role))
    url = make_url(postgres_url).set(username="nobody_here").render_as_string(hide_password=False)

    # WHEN the pipeline opens its engine THEN it logs in as the secret's user
    try:
        assert _current_user(get_engine(url)) == role
    finally:
        dispose_engine(url)
