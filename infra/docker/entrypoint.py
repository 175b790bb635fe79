"""Container entrypoint: turns database parts into the URLs the applications read, then runs the command.

In AWS no password is written into a task definition or a function configuration: ECS injects
``DATABASE_USER`` / ``DATABASE_PASSWORD`` from the RDS-managed secret, and a Lambda function gets
``DATABASE_SECRET_ARN`` and reads the secret once per cold start. From these parts this script sets

- ``DATABASE_URL`` (churn_common.settings) for ``DATABASE_NAME``, unless it is already set;
- ``MLFLOW_BACKEND_STORE_URI`` for ``MLFLOW_BACKEND_DATABASE``, if that is set;

creates the databases named in ``ENSURE_DATABASES`` (comma-separated) when they do not exist, and
then replaces itself with the command given as arguments (``os.execvp``). Without database variables
it changes nothing, so the same image runs unchanged on a laptop.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Mapping, MutableMapping
from urllib.parse import quote

DRIVER = "postgresql+psycopg"


def database_url(env: Mapping[str, str], database: str) -> str:
    """SQLAlchemy URL for ``database`` on the configured server; user and password are percent-encoded."""
    user = quote(env["DATABASE_USER"], safe="")
    password = quote(env["DATABASE_PASSWORD"], safe="")
    host = env["DATABASE_HOST"]
    port = env.get("DATABASE_PORT", "5432")
    sslmode = env.get("DATABASE_SSLMODE", "require")
    return f"{DRIVER}://{user}:{password}@{host}:{port}/{quote(database, safe='')}?sslmode={sslmode}"


def load_secret_credentials(env: MutableMapping[str, str]) -> None:
    """Fill DATABASE_USER / DATABASE_PASSWORD from the JSON secret DATABASE_SECRET_ARN (RDS-managed format)."""
    arn = env.get("DATABASE_SECRET_ARN")
    if not arn or env.get("DATABASE_PASSWORD"):
        return
    import boto3

    secret = json.loads(boto3.client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"])
    env.setdefault("DATABASE_USER", secret["username"])
    env["DATABASE_PASSWORD"] = secret["password"]


def ensure_databases(env: Mapping[str, str], names: list[str]) -> None:
    """Create each database that does not exist yet (concurrent starts are harmless)."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(
        host=env["DATABASE_HOST"],
        port=env.get("DATABASE_PORT", "5432"),
        dbname=env.get("DATABASE_NAME", "postgres"),
        user=env["DATABASE_USER"],
        password=env["DATABASE_PASSWORD"],
        sslmode=env.get("DATABASE_SSLMODE", "require"),
        connect_timeout=10,
        autocommit=True,
    ) as conn:
        for name in names:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
                continue
            with contextlib.suppress(psycopg.errors.DuplicateDatabase):
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def prepare_environment(env: MutableMapping[str, str]) -> None:
    """Apply the rules of the module docstring to ``env`` in place."""
    if not env.get("DATABASE_HOST"):
        return
    load_secret_credentials(env)
    if not (env.get("DATABASE_USER") and env.get("DATABASE_PASSWORD")):
        return
    if env.get("DATABASE_NAME") and not env.get("DATABASE_URL"):
        env["DATABASE_URL"] = database_url(env, env["DATABASE_NAME"])
    if env.get("MLFLOW_BACKEND_DATABASE") and not env.get("MLFLOW_BACKEND_STORE_URI"):
        env["MLFLOW_BACKEND_STORE_URI"] = database_url(env, env["MLFLOW_BACKEND_DATABASE"])
    wanted = [name.strip() for name in env.get("ENSURE_DATABASES", "").split(",") if name.strip()]
    if wanted:
        ensure_databases(env, wanted)


def main(argv: list[str]) -> None:
    if not argv:
        sys.exit("usage: entrypoint.py COMMAND [ARG...]")
    prepare_environment(os.environ)
    os.execvp(argv[0], argv)


if __name__ == "__main__":
    main(sys.argv[1:])
