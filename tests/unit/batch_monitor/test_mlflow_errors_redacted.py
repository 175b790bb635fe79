"""The worker's and ``make model-registry``'s way into MLflow, when the server is unreachable and the tracking
URI holds a login: the error that reaches the retraining ledger, the flow run's log and the terminal names
the server, never the password. Closed local port: refused at once, no server needed."""

from __future__ import annotations

import traceback
from collections.abc import Callable, Iterator

import pytest

from batch_monitor.retraining.challenger import serving_version
from churn_common.mlflow_credentials import MlflowRequestError
from churn_common.settings import Settings, get_settings
from tests.conftest import free_port
from training.train import alias_exists

SECRET = "s3cr3t-password"


@pytest.fixture(autouse=True)
def process_wide_uris() -> Iterator[None]:
    """The calls point MLflow's process-wide URIs at the dead server; later tests get theirs back."""
    import mlflow

    saved = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    yield
    mlflow.set_tracking_uri(saved[0])
    mlflow.set_registry_uri(saved[1])


@pytest.mark.parametrize("call", [serving_version, alias_exists], ids=["retraining", "model-registry"])
def test_an_unreachable_registry_is_reported_without_the_password(env, call: Callable[[Settings], object]) -> None:
    # GIVEN a tracking URI with a login, where nothing listens (and no retries: MLflow's default waits minutes)
    port = free_port()
    env(MLFLOW_TRACKING_URI=f"http://churn-pipeline:{SECRET}@127.0.0.1:{port}", MLFLOW_HTTP_REQUEST_MAX_RETRIES="0")
    # WHEN the registry is asked for the serving version
    with pytest.raises(MlflowRequestError) as raised:
        call(get_settings())
    # THEN the error and its traceback name the server with the login masked
    shown = "".join(traceback.format_exception(raised.value))
    assert SECRET not in shown
    assert f"http://***@127.0.0.1:{port}" in str(raised.value)
