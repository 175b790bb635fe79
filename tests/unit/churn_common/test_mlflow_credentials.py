"""The MLflow login: where it comes from, and that its password shows nowhere (reprs, settings, errors)."""

from __future__ import annotations

import traceback

import pytest

from churn_common.mlflow_credentials import (
    BasicCredentials,
    FixedCredentials,
    MlflowRequestError,
    SecretCredentials,
    credentials_source,
    mlflow_errors_redacted,
    mlflow_username,
    split_userinfo,
)
from churn_common.settings import get_settings

SECRET = "s3cr3t-password"


@pytest.mark.parametrize(
    ("uri", "bare", "login"),
    [
        ("http://mlflow.internal:5000", "http://mlflow.internal:5000", None),
        ("http://churn-pipeline:pw@mlflow.internal:5000/x", "http://mlflow.internal:5000/x", ("churn-pipeline", "pw")),
        ("https://u%40corp:p%3Aw%2F@host", "https://host", ("u@corp", "p:w/")),
        ("http://user:p@ss@host:5000", "http://host:5000", ("user", "p@ss")),
    ],
)
def test_userinfo_is_taken_out_of_the_uri_as_a_login(uri: str, bare: str, login: tuple[str, str] | None) -> None:
    stripped, credentials = split_userinfo(uri)
    assert stripped == bare
    assert (credentials.username, credentials.password) == login if credentials else login is None


def test_neither_the_login_nor_the_settings_show_the_password(env) -> None:
    # GIVEN the password in the environment, as ECS injects it
    env(MLFLOW_TRACKING_USERNAME="churn-pipeline", MLFLOW_TRACKING_PASSWORD=SECRET)
    settings = get_settings()
    login = credentials_source(settings).current()
    # THEN it is usable, and no repr or dump of the settings or the login holds it
    assert login == BasicCredentials(username="churn-pipeline", password=SECRET)
    for text in (repr(settings), str(settings), settings.model_dump_json(), repr(login)):
        assert SECRET not in text


def test_the_environment_login_comes_before_the_secret_which_is_read_only_when_used(env) -> None:
    env(MLFLOW_CREDENTIALS_SECRET_ARN="arn:aws:secretsmanager:us-east-1:000000000000:secret:mlflow-pipeline")
    source = credentials_source(get_settings())
    assert isinstance(source, SecretCredentials)  # nothing read yet: the emulator is not even running
    env(MLFLOW_TRACKING_USERNAME="churn-pipeline", MLFLOW_TRACKING_PASSWORD=SECRET)
    assert credentials_source(get_settings()) == FixedCredentials(BasicCredentials("churn-pipeline", SECRET))


def test_the_mlflow_user_is_the_configured_one_else_the_uris(env) -> None:
    env(MLFLOW_TRACKING_URI=f"http://from-uri:{SECRET}@mlflow.internal:5000")
    assert mlflow_username(get_settings()) == "from-uri"
    env(MLFLOW_TRACKING_USERNAME="churn-pipeline")
    assert mlflow_username(get_settings()) == "churn-pipeline"


def test_an_error_quoting_a_url_with_credentials_leaves_redacted_and_unchained() -> None:
    # WHEN an MLflow call fails with its request URL in the message
    with pytest.raises(MlflowRequestError) as raised, mlflow_errors_redacted():
        raise ConnectionError(f"API request to http://churn-pipeline:{SECRET}@mlflow:5000/api failed")
    # THEN neither the error nor its whole traceback holds the password; both still name the server
    shown = "".join(traceback.format_exception(raised.value))
    assert SECRET not in shown
    assert "ConnectionError: API request to http://***@mlflow:5000/api failed" in shown


def test_an_error_without_credentials_passes_unchanged() -> None:
    original = LookupError("registered model alias staging not found")
    with pytest.raises(LookupError) as raised, mlflow_errors_redacted():
        raise original
    assert raised.value is original
