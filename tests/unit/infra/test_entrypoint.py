"""infra/docker/entrypoint.py: database URLs from the parts that ECS and Lambda provide."""

from __future__ import annotations

import importlib.util
import json
import uuid
from pathlib import Path
from types import ModuleType

import pytest
from sqlalchemy.engine import make_url

ENTRYPOINT = Path(__file__).resolve().parents[3] / "infra" / "docker" / "entrypoint.py"


@pytest.fixture(scope="module")
def entrypoint() -> ModuleType:
    spec = importlib.util.spec_from_file_location("churn_container_entrypoint", ENTRYPOINT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


PARTS = {
    "DATABASE_HOST": "db.internal",
    "DATABASE_PORT": "5432",
    "DATABASE_NAME": "churn",
    "DATABASE_USER": "churn_admin",
    "DATABASE_PASSWORD": "p@ss:w/rd%?#",
}


def test_password_with_url_characters_survives_the_round_trip(entrypoint: ModuleType) -> None:
    url = make_url(entrypoint.database_url(PARTS, "churn"))
    assert url.drivername == "postgresql+psycopg"
    assert url.username == "churn_admin"
    assert url.password == "p@ss:w/rd%?#"
    assert (url.host, url.port, url.database) == ("db.internal", 5432, "churn")
    assert url.query == {"sslmode": "require"}


def test_parts_become_database_url_and_mlflow_store(entrypoint: ModuleType) -> None:
    env = {**PARTS, "MLFLOW_BACKEND_DATABASE": "mlflow"}
    entrypoint.prepare_environment(env)
    assert make_url(env["DATABASE_URL"]).database == "churn"
    assert make_url(env["MLFLOW_BACKEND_STORE_URI"]).database == "mlflow"


def test_explicit_urls_and_missing_parts_are_left_alone(entrypoint: ModuleType) -> None:
    env = {**PARTS, "DATABASE_URL": "sqlite:///x.db"}
    entrypoint.prepare_environment(env)
    assert env["DATABASE_URL"] == "sqlite:///x.db"
    local = {"PATH": "/usr/bin"}
    entrypoint.prepare_environment(local)
    assert local == {"PATH": "/usr/bin"}


def test_credentials_come_from_the_rds_managed_secret(entrypoint: ModuleType, moto_endpoint: str) -> None:
    import boto3

    secrets = boto3.client("secretsmanager", region_name="us-east-1")
    name = f"rds-master-{uuid.uuid4().hex[:8]}"
    arn = secrets.create_secret(Name=name, SecretString=json.dumps({"username": "admin", "password": "s3cr/t"}))["ARN"]
    env = {"DATABASE_HOST": "db.internal", "DATABASE_NAME": "churn", "DATABASE_SECRET_ARN": arn}
    entrypoint.prepare_environment(env)
    url = make_url(env["DATABASE_URL"])
    assert (url.username, url.password) == ("admin", "s3cr/t")


def test_missing_databases_are_created_once(entrypoint: ModuleType, postgres_server: str) -> None:
    import psycopg

    admin = make_url(postgres_server)
    env = {
        "DATABASE_HOST": admin.host or "127.0.0.1",
        "DATABASE_PORT": str(admin.port or 5432),
        "DATABASE_NAME": admin.database or "postgres",
        "DATABASE_USER": admin.username or "postgres",
        "DATABASE_PASSWORD": admin.password or "",
        "DATABASE_SSLMODE": "prefer",
    }
    name = f"churn_ep_{uuid.uuid4().hex[:10]}"
    try:
        entrypoint.ensure_databases(env, [name])
        entrypoint.ensure_databases(env, [name])  # a second start finds it
        with psycopg.connect(postgres_server) as conn:
            assert conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
    finally:
        with psycopg.connect(postgres_server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
