"""What the MLflow task's entrypoint makes of the user store at every start (MLflow's own store on SQLite):
the users exist with the passwords of their secrets, and the pipeline user holds EDIT, never more."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy.engine import make_url

from infra.docker import entrypoint

pytestmark = pytest.mark.integration

MODEL_NAME = "XGBoostChurnModel"


def _start(uri: str, *, admin_password: str, pipeline_password: str) -> None:
    entrypoint.ensure_mlflow_users(
        {
            "MLFLOW_AUTH_DATABASE_URI": uri,
            "MLFLOW_AUTH_ADMIN_USERNAME": "admin",
            "MLFLOW_AUTH_ADMIN_PASSWORD": admin_password,
            "MLFLOW_PIPELINE_USERNAME": "churn-pipeline",
            "MLFLOW_PIPELINE_PASSWORD": pipeline_password,
            "MODEL_NAME": MODEL_NAME,
        }
    )


def _store(uri: str) -> Any:
    from mlflow.server.auth.sqlalchemy_store import SqlAlchemyStore

    store = SqlAlchemyStore()
    store.init_db(uri)
    return store


def test_every_start_makes_users_and_grants_match_the_secrets(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'auth.db'}"
    first, second = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    # GIVEN a first start on an empty user store
    _start(uri, admin_password=secrets.token_urlsafe(24), pipeline_password=first)
    store = _store(uri)
    assert store.get_user("admin").is_admin
    assert not store.get_user("churn-pipeline").is_admin
    assert store.authenticate_user("churn-pipeline", first)
    assert store.get_registered_model_permission(MODEL_NAME, "churn-pipeline").permission == "EDIT"
    # AND the pipeline user then created the model, which makes MLflow grant it MANAGE
    store.grant_user_permission("churn-pipeline", "registered_model", MODEL_NAME, "MANAGE")
    # WHEN the task starts again with a new password in the pipeline's secret
    _start(uri, admin_password=secrets.token_urlsafe(24), pipeline_password=second)
    # THEN only the new password logs in, and the grant is EDIT again: no deleting, no granting
    assert store.authenticate_user("churn-pipeline", second)
    assert not store.authenticate_user("churn-pipeline", first)
    assert store.get_registered_model_permission(MODEL_NAME, "churn-pipeline").permission == "EDIT"
    assert store.get_experiment_permission("*", "churn-pipeline").permission == "EDIT"


@pytest.fixture
def auth_database(postgres_server: str) -> Iterator[str]:
    """The name of a database the entrypoint is to create; dropped afterwards."""
    name = f"mlflow_auth_{uuid.uuid4().hex[:8]}"
    yield name
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_on_postgres_the_store_is_a_database_of_its_own_reached_without_a_password_in_any_file(
    postgres_server: str, auth_database: str, tmp_path: Path
) -> None:
    # GIVEN the MLflow task's environment: database parts, the auth database's name, the secrets
    server = make_url(postgres_server)
    database_password = secrets.token_urlsafe(24)
    env = {
        "DATABASE_HOST": server.host or "127.0.0.1",
        "DATABASE_PORT": str(server.port or 5432),
        "DATABASE_NAME": server.database or "postgres",
        "DATABASE_USER": server.username or "postgres",
        "DATABASE_PASSWORD": database_password,  # the local server trusts its users: not checked
        "DATABASE_SSLMODE": "disable",
        "ENSURE_DATABASES": auth_database,
        "MLFLOW_AUTH_DATABASE": auth_database,
        "MLFLOW_AUTH_CONFIG_PATH": str(tmp_path / "basic_auth.ini"),
        "MLFLOW_PIPELINE_USERNAME": "churn-pipeline",
        "MLFLOW_PIPELINE_PASSWORD": secrets.token_urlsafe(24),
        "MODEL_NAME": MODEL_NAME,
    }
    # WHEN the entrypoint prepares the environment
    entrypoint.prepare_environment(env)
    # THEN the database exists and holds the pipeline user
    store_uri = env["MLFLOW_AUTH_DATABASE_URI"]
    assert make_url(store_uri).database == auth_database
    assert _store(store_uri).authenticate_user("churn-pipeline", env["MLFLOW_PIPELINE_PASSWORD"])
    # AND the database password is in the environment (for libpq), not in the URI nor in the written file
    assert make_url(store_uri).password is None
    assert env["PGPASSWORD"] == database_password
    assert database_password not in Path(env["MLFLOW_AUTH_CONFIG_PATH"]).read_text()
