"""The database login kept in the emulator's Secrets Manager, as RDS keeps it on AWS.

With it the local components read their database credentials the way the deployed ones do (each new
connection takes them from the secret, ``churn_common/database_credentials.py``), under their own role.
"""

from __future__ import annotations

import json

from churn_common.aws import client
from churn_common.database import engine_url
from churn_common.settings import Settings

SECRET_NAME = "churn-database-login"
ROLE_LOGIN_BACKENDS = ("postgresql",)


def store_database_secret(settings: Settings) -> str | None:
    """The ARN of a secret holding the user and password of ``DATABASE_URL``; None for a database without a
    login (SQLite)."""
    url = engine_url(settings.resolved_database_url)
    if url.get_backend_name() not in ROLE_LOGIN_BACKENDS or not url.username:
        return None
    login = json.dumps({"username": url.username, "password": url.password or ""})
    return str(client("secretsmanager").create_secret(Name=SECRET_NAME, SecretString=login)["ARN"])
