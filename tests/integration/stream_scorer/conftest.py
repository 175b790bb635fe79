"""A real MLflow tracking server for the scorer's REST path: started once per session on a store of its
own, with the session's trained model registered on it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import xgboost

from churn_common.settings import get_settings
from tests.local_servers import mlflow_server as running_mlflow_server

# MLflow 3 starts a pool of job-runner processes with the server by default (~250 MB and a burst of CPU
# each); the registry needs none of them.


@dataclass(frozen=True)
class MlflowServer:
    url: str
    port: int
    log_path: Path

    def register(self, booster: xgboost.Booster, *, name: str) -> str:
        """Log ``booster`` as a new version of ``name`` on this server (as training does); returns the version."""
        import mlflow
        import mlflow.xgboost

        from training.model import pyfunc_requirements

        saved = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
        mlflow.set_tracking_uri(self.url)
        mlflow.set_registry_uri(self.url)
        try:
            with mlflow.start_run():
                info = mlflow.xgboost.log_model(
                    booster,
                    name="model",
                    registered_model_name=name,
                    model_format="ubj",
                    pip_requirements=list(pyfunc_requirements()),
                )
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


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    folder = tmp_path_factory.mktemp("mlflow-server")
    log_path = folder / "server.log"
    with running_mlflow_server(
        backend_store_uri=f"sqlite:///{folder / 'mlflow.db'}", artifacts=folder / "artifacts", log_path=log_path
    ) as url:
        yield MlflowServer(url=url, port=int(url.rsplit(":", 1)[1]), log_path=log_path)


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
