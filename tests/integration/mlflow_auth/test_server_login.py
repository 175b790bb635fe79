"""The MLflow server as deployed: nobody without a login, and no user without a grant, can move the serving
alias; the pipeline user can read and load the model it serves."""

from __future__ import annotations

import configparser
import json
import secrets
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest
from mlflow import MlflowClient

from churn_common.mlflow_credentials import BasicCredentials
from churn_common.schema import FEATURE_COLUMNS
from tests.integration.mlflow_auth.conftest import AuthServer, ServedVersion

pytestmark = pytest.mark.integration

ALIAS_PATH = "/api/2.0/mlflow/registered-models/alias"


def _set_alias_status(
    server: AuthServer, *, login: BasicCredentials | None, name: str, alias: str, version: str
) -> int:
    """The HTTP status of one raw alias move, as any client inside the network could send it."""
    body = json.dumps({"name": name, "alias": alias, "version": version}).encode()
    request = urllib.request.Request(
        f"{server.url}{ALIAS_PATH}", data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    if login is not None:
        request.add_header("Authorization", login.authorization)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def _serving_version(server: AuthServer, served: ServedVersion) -> str:
    with server.as_user(server.admin):
        return str(MlflowClient(server.url, server.url).get_model_version_by_alias(served.name, served.alias).version)


@contextmanager
def _registry_of(server: AuthServer) -> Iterator[None]:
    import mlflow

    saved = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    mlflow.set_tracking_uri(server.url)
    mlflow.set_registry_uri(server.url)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(saved[0])
        mlflow.set_registry_uri(saved[1])


def test_without_a_login_the_alias_cannot_be_moved(auth_server: AuthServer, served_version: ServedVersion) -> None:
    # GIVEN a second version of the served model
    other = auth_server.register(served_version.booster)
    # WHEN a client inside the network moves the alias to it without credentials, or with a wrong password
    anonymous = _set_alias_status(
        auth_server, login=None, name=served_version.name, alias=served_version.alias, version=other
    )
    wrong = BasicCredentials(username=auth_server.pipeline.username, password=secrets.token_urlsafe(24))
    guessed = _set_alias_status(
        auth_server, login=wrong, name=served_version.name, alias=served_version.alias, version=other
    )
    # THEN both are refused as unauthenticated, and the alias still names the served version
    assert (anonymous, guessed) == (401, 401)
    assert _serving_version(auth_server, served_version) == served_version.version


def test_a_user_without_grants_can_neither_move_nor_read_the_model(
    auth_server: AuthServer, served_version: ServedVersion
) -> None:
    from mlflow.server.auth.client import AuthServiceClient

    # GIVEN an account that the admin created for a person, with no grant (default_permission NO_PERMISSIONS)
    person = BasicCredentials(username=f"analyst-{secrets.token_hex(4)}", password=secrets.token_urlsafe(24))
    with auth_server.as_user(auth_server.admin):
        AuthServiceClient(auth_server.url).create_user(person.username, person.password)
    # WHEN it moves the alias, or reads the model
    moved = _set_alias_status(
        auth_server, login=person, name=served_version.name, alias=served_version.alias, version="1"
    )
    request = urllib.request.Request(
        f"{auth_server.url}{ALIAS_PATH}?name={served_version.name}&alias={served_version.alias}",
        headers={"Authorization": person.authorization},
    )
    with pytest.raises(urllib.error.HTTPError) as read:
        urllib.request.urlopen(request, timeout=10)
    # THEN both are forbidden
    assert moved == 403
    assert read.value.code == 403


def test_the_pipeline_user_loads_the_aliased_model(auth_server: AuthServer, served_version: ServedVersion) -> None:
    import mlflow.xgboost

    # GIVEN the pipeline's login in the environment, as the worker and `make model-registry` have it
    features = np.random.default_rng(3).integers(0, 50, size=(16, len(FEATURE_COLUMNS))).astype(np.float32)
    with auth_server.as_user(auth_server.pipeline), _registry_of(auth_server):
        # WHEN MLflow's client loads the model the alias names
        loaded = mlflow.xgboost.load_model(f"models:/{served_version.name}@{served_version.alias}")
    # THEN it is the served version
    np.testing.assert_allclose(loaded.inplace_predict(features), served_version.booster.inplace_predict(features))


def test_the_written_auth_configuration_holds_no_password(auth_server: AuthServer) -> None:
    # GIVEN the configuration the entrypoint wrote for the server
    text = auth_server.auth_config.read_text()
    config = configparser.ConfigParser()
    config.read_string(text)
    # THEN users start without access, the store is the configured database, and no password is in the file
    assert config["mlflow"]["default_permission"] == "NO_PERMISSIONS"
    assert config["mlflow"]["database_uri"].startswith("sqlite:///")
    assert auth_server.admin.password not in text
    assert auth_server.pipeline.password not in text
