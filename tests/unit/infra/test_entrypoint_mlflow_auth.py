"""infra/docker/entrypoint.py, MLflow's auth configuration: what MLflow will read from the written file."""

from __future__ import annotations

import configparser
from pathlib import Path

from sqlalchemy.engine import make_url

from infra.docker.entrypoint import database_url, mlflow_auth_config, write_mlflow_auth_config

PARTS = {
    "DATABASE_HOST": "db.internal",
    "DATABASE_USER": "churn@admin",
    "DATABASE_PASSWORD": "p@ss:w/rd%?#",
}


def _as_mlflow_reads_it(text: str) -> configparser.SectionProxy:
    """MLflow reads the file with a default ConfigParser (with interpolation)."""
    config = configparser.ConfigParser()
    config.read_string(text)
    return config["mlflow"]


def test_the_store_uri_survives_mlflows_interpolation_and_the_file_holds_no_password() -> None:
    # GIVEN the auth database's URI as the entrypoint builds it: percent-encoded user, no password
    uri = database_url(PARTS, "mlflow_auth", with_password=False)
    # WHEN it is written into the configuration and read back the way MLflow reads it
    section = _as_mlflow_reads_it(mlflow_auth_config(uri))
    # THEN MLflow gets the same URI, without the password; users start without access
    assert section["database_uri"] == uri
    assert make_url(uri).username == "churn@admin"
    assert make_url(uri).password is None
    assert section["default_permission"] == "NO_PERMISSIONS"
    assert section["authorization_function"] == "mlflow.server.auth:authenticate_request_basic_auth"
    assert int(section["auth_cache_ttl_seconds"]) > 0


def test_the_file_goes_where_mlflow_auth_config_path_says_or_to_a_new_private_folder(tmp_path: Path) -> None:
    chosen = tmp_path / "auth.ini"
    env = {"MLFLOW_AUTH_DATABASE_URI": "sqlite:///auth.db", "MLFLOW_AUTH_CONFIG_PATH": str(chosen)}
    assert write_mlflow_auth_config(env) == chosen
    unset = {"MLFLOW_AUTH_DATABASE_URI": "sqlite:///auth.db"}
    written = write_mlflow_auth_config(unset)
    try:
        assert unset["MLFLOW_AUTH_CONFIG_PATH"] == str(written)
        assert written.parent.stat().st_mode & 0o077 == 0  # only the server's user can list the folder
        assert _as_mlflow_reads_it(written.read_text())["database_uri"] == "sqlite:///auth.db"
    finally:
        written.unlink()
        written.parent.rmdir()
