"""The scorer's cold path against an MLflow server that requires a login: credentials from the environment,
from a Secrets Manager secret (the emulator), or from the tracking URI's userinfo; a refused login fails
with an error that says what to fix and never shows the password."""

from __future__ import annotations

import json
import secrets
import traceback
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from churn_common.aws import client
from churn_common.database import get_engine
from churn_common.mlflow_credentials import BasicCredentials, SecretCredentials
from churn_common.schema import FEATURE_COLUMNS
from stream_scorer.handler import handle
from stream_scorer.model import ModelCache
from stream_scorer.model_registry import RegistryAuthenticationError, RestRegistry, registry_for
from tests.factories import customer_record, encoded, fixed_incarnation, kinesis_event
from tests.integration.mlflow_auth.conftest import AuthServer, ServedVersion

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def cold_container() -> Iterator[None]:
    """Each test starts like a fresh Lambda container: no registry client, no credentials read yet."""
    registry_for.cache_clear()
    yield
    registry_for.cache_clear()


@pytest.fixture
def put_secret(moto_endpoint: str) -> Callable[[BasicCredentials], str]:
    """A secret in the emulator's Secrets Manager holding a login in the format Terraform writes."""

    def put(login: BasicCredentials) -> str:
        value = json.dumps({"username": login.username, "password": login.password})
        name = f"mlflow-pipeline-{uuid.uuid4().hex[:8]}"
        return str(client("secretsmanager").create_secret(Name=name, SecretString=value)["ARN"])

    return put


def _features() -> np.ndarray:
    return np.random.default_rng(11).integers(0, 50, size=(32, len(FEATURE_COLUMNS))).astype(np.float32)


def _wrong(login: BasicCredentials) -> BasicCredentials:
    return BasicCredentials(username=login.username, password=secrets.token_urlsafe(24))


def _cache(served: ServedVersion) -> ModelCache:
    return ModelCache(name=served.name, alias=served.alias, refresh_seconds=60)


def test_the_scorer_loads_the_served_model_with_the_login_of_the_environment(
    auth_server: AuthServer, served_version: ServedVersion, env
) -> None:
    # GIVEN the Lambda's settings with the pipeline's login in the environment
    env(
        MLFLOW_TRACKING_URI=auth_server.url,
        MLFLOW_TRACKING_USERNAME=auth_server.pipeline.username,
        MLFLOW_TRACKING_PASSWORD=auth_server.pipeline.password,
    )
    # WHEN the scorer loads the serving model
    model = _cache(served_version).get()
    # THEN it is the aliased version, predicting as the logged booster does
    assert model.version == served_version.version
    np.testing.assert_allclose(model.predict_proba(_features()), served_version.booster.inplace_predict(_features()))


def test_the_scorer_reads_its_login_from_the_secret_named_by_its_arn(
    auth_server: AuthServer, served_version: ServedVersion, put_secret, env
) -> None:
    # GIVEN only the ARN of a secret with the pipeline's login, as Terraform configures the function
    env(MLFLOW_TRACKING_URI=auth_server.url, MLFLOW_CREDENTIALS_SECRET_ARN=put_secret(auth_server.pipeline))
    # WHEN the scorer loads the serving model THEN it logs in with the secret's credentials
    assert _cache(served_version).get().version == served_version.version


def test_a_new_password_in_the_secret_is_taken_when_the_old_one_is_refused(
    auth_server: AuthServer, served_version: ServedVersion, put_secret
) -> None:
    # GIVEN a warm scorer whose secret held a password the server does not accept
    arn = put_secret(_wrong(auth_server.pipeline))
    login = SecretCredentials(arn, min_seconds_between_reads=0)
    registry = RestRegistry(auth_server.url, credentials=login)
    with pytest.raises(RegistryAuthenticationError):
        registry.resolve(served_version.name, served_version.alias)
    # WHEN the secret gets the password the server accepts (a deployment with a new one)
    value = {"username": auth_server.pipeline.username, "password": auth_server.pipeline.password}
    client("secretsmanager").put_secret_value(SecretId=arn, SecretString=json.dumps(value))
    # THEN the next lookup is refused once, re-reads the secret and succeeds, without a new container
    assert registry.resolve(served_version.name, served_version.alias).version == served_version.version


def test_a_wrong_password_fails_clearly_without_showing_it(
    auth_server: AuthServer, served_version: ServedVersion, env, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN the Lambda's settings with a wrong password for the pipeline user
    wrong = _wrong(auth_server.pipeline)
    env(
        MLFLOW_TRACKING_URI=auth_server.url,
        MLFLOW_TRACKING_USERNAME=wrong.username,
        MLFLOW_TRACKING_PASSWORD=wrong.password,
    )
    engine = get_engine(f"sqlite:///{tmp_path / 'churn.db'}")
    # WHEN a batch is handled THEN it fails as a registry fault (Lambda retries it)
    with pytest.raises(RegistryAuthenticationError) as raised:
        handle(
            kinesis_event(encoded([customer_record()])),
            models=_cache(served_version),
            engine=engine,
            incarnations=fixed_incarnation,
        )
    # AND the error names the server, the user and what was refused, never the password
    message = str(raised.value)
    assert auth_server.url in message
    assert f"refused the password of user {wrong.username!r} (401)" in message
    assert wrong.password not in "".join(traceback.format_exception(raised.value))
    # AND so does the fault line of the log
    (line,) = [json.loads(text) for text in capsys.readouterr().out.splitlines() if '"fault"' in text]
    assert line["fault"] == "registry"
    assert wrong.password not in json.dumps(line)


def test_no_login_at_all_names_the_settings_to_set(auth_server: AuthServer, served_version: ServedVersion) -> None:
    with pytest.raises(RegistryAuthenticationError, match="MLFLOW_CREDENTIALS_SECRET_ARN"):
        RestRegistry(auth_server.url).resolve(served_version.name, served_version.alias)


def test_a_login_in_the_tracking_uri_is_used_and_never_shown(
    auth_server: AuthServer, served_version: ServedVersion
) -> None:
    # GIVEN tracking URIs with the login in their userinfo: the right one, and one with a wrong password
    host = auth_server.url.removeprefix("http://")
    right = f"http://{auth_server.pipeline.username}:{auth_server.pipeline.password}@{host}"
    wrong = _wrong(auth_server.pipeline)
    # WHEN the scorer's registry resolves the alias through each
    # THEN the right login loads the version; the wrong one is refused with the userinfo masked
    assert RestRegistry(right).resolve(served_version.name, served_version.alias).version == served_version.version
    with pytest.raises(RegistryAuthenticationError) as raised:
        RestRegistry(f"http://{wrong.username}:{wrong.password}@{host}").resolve(
            served_version.name, served_version.alias
        )
    assert f"http://***@{host}" in str(raised.value)
    assert wrong.password not in "".join(traceback.format_exception(raised.value))
