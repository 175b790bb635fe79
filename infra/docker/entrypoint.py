"""Container entrypoint: turns database parts into the URLs the applications read, then runs the command.

In AWS no password is written into a task definition or a function configuration: ECS injects
``DATABASE_USER`` / ``DATABASE_PASSWORD`` from the RDS-managed secret, and a Lambda function gets
``DATABASE_SECRET_ARN`` and reads the secret at cold start (and again after a rotation, see
churn_common/database_credentials.py). From these parts this script sets

- ``DATABASE_URL`` (churn_common.settings) for ``DATABASE_NAME``, unless it is already set;
- ``MLFLOW_BACKEND_STORE_URI`` for ``MLFLOW_BACKEND_DATABASE``, if that is set;
- ``MLFLOW_AUTH_DATABASE_URI`` for ``MLFLOW_AUTH_DATABASE``, if that is set (without the password, which
  libpq takes from ``PGPASSWORD``);

creates the databases named in ``ENSURE_DATABASES`` (comma-separated) when they do not exist, keeps
the read-only login ``READONLY_ROLE_NAME`` (password ``READONLY_ROLE_PASSWORD``) able to read and
only read the application database, and then replaces itself with the command given as arguments
(``os.execvp``). Without database variables it changes nothing, so the same image runs unchanged on
a laptop.

With ``MLFLOW_AUTH_DATABASE_URI`` (``mlflow server --app-name basic-auth``) it also writes the auth
configuration that MLflow reads from ``MLFLOW_AUTH_CONFIG_PATH`` and makes the user store match the
secrets at every start: the admin (``MLFLOW_AUTH_ADMIN_USERNAME`` / ``MLFLOW_AUTH_ADMIN_PASSWORD``) and
the pipeline user (``MLFLOW_PIPELINE_USERNAME`` / ``MLFLOW_PIPELINE_PASSWORD``) exist with those
passwords, and the pipeline user holds the grants of :func:`pipeline_grants` on ``MODEL_NAME``.
"""

from __future__ import annotations

import base64
import configparser
import contextlib
import hashlib
import hmac
import io
import json
import os
import sys
import tempfile
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

DRIVER = "postgresql+psycopg"
SCRAM_ITERATIONS = 4096
SCRAM_SALT_BYTES = 16

MLFLOW_AUTH_FILE_NAME = "basic_auth.ini"
# Users get only what is granted to them: the registry holds customer data (each version's reference
# frame), and any account an admin adds for a person starts without access to it.
MLFLOW_AUTH_DEFAULT_PERMISSION = "NO_PERMISSIONS"
MLFLOW_AUTH_FUNCTION = "mlflow.server.auth:authenticate_request_basic_auth"
# MLflow checks the password of every request with a deliberately slow hash (about half a second of CPU):
# a training run's two dozen requests would take that many seconds. A checked login is remembered this
# long per server process. The pipeline's and the admin's passwords change only when the task starts;
# a password an admin changes, or a user deleted, through the API stays usable on the service's other
# worker processes for at most this long.
MLFLOW_AUTH_CACHE_SECONDS = 60
MLFLOW_EDIT = "EDIT"


def database_url(env: Mapping[str, str], database: str, *, with_password: bool = True) -> str:
    """SQLAlchemy URL for ``database`` on the configured server; user and password are percent-encoded."""
    user = quote(env["DATABASE_USER"], safe="")
    login = f"{user}:{quote(env['DATABASE_PASSWORD'], safe='')}" if with_password else user
    host = env["DATABASE_HOST"]
    port = env.get("DATABASE_PORT", "5432")
    sslmode = env.get("DATABASE_SSLMODE", "require")
    return f"{DRIVER}://{login}@{host}:{port}/{quote(database, safe='')}?sslmode={sslmode}"


def load_secret_credentials(env: MutableMapping[str, str]) -> None:
    """Fill DATABASE_USER / DATABASE_PASSWORD from the JSON secret DATABASE_SECRET_ARN (RDS-managed format)."""
    arn = env.get("DATABASE_SECRET_ARN")
    if not arn or env.get("DATABASE_PASSWORD"):
        return
    import boto3

    secret = json.loads(boto3.client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"])
    env.setdefault("DATABASE_USER", secret["username"])
    env["DATABASE_PASSWORD"] = secret["password"]


def _connect_as_owner(env: Mapping[str, str], database: str) -> Any:
    import psycopg

    return psycopg.connect(
        host=env["DATABASE_HOST"],
        port=env.get("DATABASE_PORT", "5432"),
        dbname=database,
        user=env["DATABASE_USER"],
        password=env["DATABASE_PASSWORD"],
        sslmode=env.get("DATABASE_SSLMODE", "require"),
        connect_timeout=10,
        autocommit=True,
    )


def ensure_databases(env: Mapping[str, str], names: list[str]) -> None:
    """Create each database that does not exist yet (concurrent starts are harmless)."""
    import psycopg
    from psycopg import sql

    with _connect_as_owner(env, env.get("DATABASE_NAME", "postgres")) as conn:
        for name in names:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
                continue
            with contextlib.suppress(psycopg.errors.DuplicateDatabase):
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def scram_sha256_verifier(password: str, *, salt: bytes | None = None, iterations: int = SCRAM_ITERATIONS) -> str:
    """What Postgres stores for a SCRAM-SHA-256 password (RFC 5802/7677), so the clear text never
    reaches the server, where ``log_statement = ddl`` would write it into the logs."""
    salt = os.urandom(SCRAM_SALT_BYTES) if salt is None else salt
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    b64 = lambda raw: base64.b64encode(raw).decode()  # noqa: E731
    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def readonly_role_statements(role: str, password: str, *, database: str, owner: str) -> list[Any]:
    """Login, read-only by default, SELECT on today's tables and on those ``owner`` creates later."""
    from psycopg import sql

    name, db, creator = sql.Identifier(role), sql.Identifier(database), sql.Identifier(owner)
    return [
        sql.SQL(
            "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = {role}) "
            "THEN CREATE ROLE {name} LOGIN; END IF; END $$"
        ).format(role=sql.Literal(role), name=name),
        sql.SQL("ALTER ROLE {} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD {}").format(
            name, sql.Literal(scram_sha256_verifier(password))
        ),
        sql.SQL("ALTER ROLE {} SET default_transaction_read_only = on").format(name),
        sql.SQL("ALTER ROLE {} SET statement_timeout = '30s'").format(name),
        sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(db, name),
        sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(name),
        sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA public TO {}").format(name),
        sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA public GRANT SELECT ON TABLES TO {}").format(
            creator, name
        ),
    ]


def ensure_readonly_role(env: Mapping[str, str]) -> None:
    """Create or update the read-only login; running it at every start applies a changed password."""
    database = env["DATABASE_NAME"]
    with _connect_as_owner(env, database) as conn:
        statements = readonly_role_statements(
            env["READONLY_ROLE_NAME"], env["READONLY_ROLE_PASSWORD"], database=database, owner=env["DATABASE_USER"]
        )
        for statement in statements:
            conn.execute(statement)


def pipeline_grants(model_name: str) -> list[tuple[str, str, str]]:
    """(resource type, resource, permission) of the pipeline user. EDIT on the served model: register
    versions, set their tags, move aliases (deleting the model or an alias, or granting, needs MANAGE;
    MLflow makes the creator of a model its manager, and the next start sets that back to EDIT). EDIT on
    every experiment: training logs its runs in one whose id exists only once training has created it."""
    return [("registered_model", model_name, MLFLOW_EDIT), ("experiment", "*", MLFLOW_EDIT)]


def mlflow_auth_config(database_uri: str) -> str:
    """The ini file of MLflow's basic-auth app. No password in it: MLflow reads the admin's from
    ``MLFLOW_AUTH_ADMIN_PASSWORD`` itself, and the database's comes from ``PGPASSWORD``."""
    config = configparser.ConfigParser(interpolation=None)
    config["mlflow"] = {
        "default_permission": MLFLOW_AUTH_DEFAULT_PERMISSION,
        # MLflow reads the file with interpolation: a literal "%" (percent-encoding) is written "%%".
        "database_uri": database_uri.replace("%", "%%"),
        "authorization_function": MLFLOW_AUTH_FUNCTION,
        "auth_cache_ttl_seconds": str(MLFLOW_AUTH_CACHE_SECONDS),
    }
    text = io.StringIO()
    config.write(text)
    return text.getvalue()


def write_mlflow_auth_config(env: MutableMapping[str, str]) -> Path:
    """Write the ini to ``MLFLOW_AUTH_CONFIG_PATH``, or to a new private folder that variable then names."""
    if env.get("MLFLOW_AUTH_CONFIG_PATH"):
        path = Path(env["MLFLOW_AUTH_CONFIG_PATH"])
    else:
        path = Path(tempfile.mkdtemp(prefix="mlflow-auth-")) / MLFLOW_AUTH_FILE_NAME
        env["MLFLOW_AUTH_CONFIG_PATH"] = str(path)
    path.write_text(mlflow_auth_config(env["MLFLOW_AUTH_DATABASE_URI"]))
    return path


def _ensure_user(store: Any, username: str, password: str, *, is_admin: bool) -> None:
    """Create the user, or set its password and role: the secret is the truth, so a new password (a new
    ``random_password`` in Terraform) takes effect when the server next starts."""
    from mlflow.exceptions import MlflowException

    if not store.has_user(username, use_primary=True):
        try:
            store.create_user(username, password, is_admin=is_admin)
            return
        except MlflowException:  # another task of the service created it a moment ago
            pass
    store.update_user(username, password=password, is_admin=is_admin)


def ensure_mlflow_users(env: Mapping[str, str]) -> None:
    """The admin and the pipeline user exist with the passwords of their secrets; the pipeline user holds
    :func:`pipeline_grants`. Through MLflow's own user store, before the server answers any request."""
    from mlflow.server.auth.sqlalchemy_store import SqlAlchemyStore

    store = SqlAlchemyStore()
    store.init_db(env["MLFLOW_AUTH_DATABASE_URI"])
    admin, admin_password = env.get("MLFLOW_AUTH_ADMIN_USERNAME"), env.get("MLFLOW_AUTH_ADMIN_PASSWORD")
    if admin and admin_password:
        _ensure_user(store, admin, admin_password, is_admin=True)
    pipeline, pipeline_password = env.get("MLFLOW_PIPELINE_USERNAME"), env.get("MLFLOW_PIPELINE_PASSWORD")
    if pipeline and pipeline_password:
        _ensure_user(store, pipeline, pipeline_password, is_admin=False)
        for resource_type, resource, permission in pipeline_grants(env["MODEL_NAME"]):
            store.grant_user_permission(pipeline, resource_type, resource, permission)


def prepare_mlflow_auth(env: MutableMapping[str, str]) -> None:
    write_mlflow_auth_config(env)
    ensure_mlflow_users(env)


def prepare_environment(env: MutableMapping[str, str]) -> None:
    """Apply the rules of the module docstring to ``env`` in place."""
    _prepare_databases(env)
    if env.get("MLFLOW_AUTH_DATABASE_URI"):
        prepare_mlflow_auth(env)


def _prepare_databases(env: MutableMapping[str, str]) -> None:
    if not env.get("DATABASE_HOST"):
        return
    load_secret_credentials(env)
    if not (env.get("DATABASE_USER") and env.get("DATABASE_PASSWORD")):
        return
    if env.get("DATABASE_NAME") and not env.get("DATABASE_URL"):
        env["DATABASE_URL"] = database_url(env, env["DATABASE_NAME"])
    if env.get("MLFLOW_BACKEND_DATABASE") and not env.get("MLFLOW_BACKEND_STORE_URI"):
        env["MLFLOW_BACKEND_STORE_URI"] = database_url(env, env["MLFLOW_BACKEND_DATABASE"])
    if env.get("MLFLOW_AUTH_DATABASE") and not env.get("MLFLOW_AUTH_DATABASE_URI"):
        # The URI goes into a file: libpq takes the password from the environment instead.
        env["MLFLOW_AUTH_DATABASE_URI"] = database_url(env, env["MLFLOW_AUTH_DATABASE"], with_password=False)
        env["PGPASSWORD"] = env["DATABASE_PASSWORD"]
    wanted = [name.strip() for name in env.get("ENSURE_DATABASES", "").split(",") if name.strip()]
    if wanted:
        ensure_databases(env, wanted)
    if env.get("READONLY_ROLE_NAME") and env.get("READONLY_ROLE_PASSWORD") and env.get("DATABASE_NAME"):
        ensure_readonly_role(env)


def main(argv: list[str]) -> None:
    if not argv:
        sys.exit("usage: entrypoint.py COMMAND [ARG...]")
    prepare_environment(os.environ)
    os.execvp(argv[0], argv)


if __name__ == "__main__":
    main(sys.argv[1:])
