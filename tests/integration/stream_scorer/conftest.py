"""A real MLflow tracking server for the scorer's REST path: started once per session on a store of its
own, with the session's trained model registered on it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import xgboost

from churn_common.settings import get_settings
from tests.conftest import free_port

# MLflow 3 starts a pool of job-runner processes with the server by default (~250 MB and a burst of CPU
# each); the registry needs none of them.
SERVER_SETTINGS = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "MLFLOW_DISABLE_TELEMETRY": "true"}
SERVER_START_TIMEOUT_SECONDS = 120


@dataclass(frozen=True)
class MlflowServer:
    url: str
    port: int
    log_path: Path

    def register(self, booster: xgboost.Booster, *, name: str) -> str:
        """Log ``booster`` as a new version of ``name`` on this server (as training does); returns the version."""
        import mlflow
        import mlflow.xgboost

        saved = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
        mlflow.set_tracking_uri(self.url)
        mlflow.set_registry_uri(self.url)
        try:
            with mlflow.start_run():
                info = mlflow.xgboost.log_model(booster, name="model", registered_model_name=name, model_format="ubj")
            return str(info.registered_model_version)
        finally:
            mlflow.set_tracking_uri(saved[0])
            mlflow.set_registry_uri(saved[1])

    def set_alias(self, name: str, alias: str, version: str) -> None:
        from mlflow import MlflowClient

        MlflowClient(self.url, self.url).set_registered_model_alias(name, alias, version)


@dataclass(frozen=True)
class ServedModel:
    name: str
    alias: str
    version: str
    booster: xgboost.Booster


def _wait_until_healthy(url: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"mlflow server exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    pytest.fail(f"mlflow server not healthy after {SERVER_START_TIMEOUT_SECONDS} s:\n{log_path.read_text()[-3000:]}")


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    folder = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    log_path = folder / "server.log"
    command = [
        str(Path(sys.executable).with_name("mlflow")),
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--backend-store-uri",
        f"sqlite:///{folder / 'mlflow.db'}",
        "--artifacts-destination",
        str(folder / "artifacts"),
        "--workers",
        "1",
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env={**os.environ, **SERVER_SETTINGS}
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_healthy(url, process, log_path)
        yield MlflowServer(url=url, port=port, log_path=log_path)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


@pytest.fixture(scope="session")
def served_model(registered_model, mlflow_server: MlflowServer) -> ServedModel:  # type: ignore[no-untyped-def]
    """The session's trained model, registered on the server under the same name and alias."""
    from stream_scorer.model import booster_from
    from stream_scorer.model_registry import MlflowClientRegistry

    settings = get_settings()
    local = MlflowClientRegistry(settings.resolved_mlflow_uri)
    booster = booster_from(local.model_file(local.resolve(settings.model_name, settings.model_alias)))
    version = mlflow_server.register(booster, name=settings.model_name)
    mlflow_server.set_alias(settings.model_name, settings.model_alias, version)
    return ServedModel(name=settings.model_name, alias=settings.model_alias, version=version, booster=booster)
