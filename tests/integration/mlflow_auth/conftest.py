"""A real MLflow server that requires a login, started once per session the way the MLflow task starts:
through infra/docker/entrypoint.py, which writes the auth configuration (temporary SQLite user store) and
makes the admin and the pipeline user match their "secrets" before ``mlflow server --app-name basic-auth``
replaces it."""

from __future__ import annotations

import secrets
import sys
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import xgboost

from churn_common.mlflow_credentials import BasicCredentials
from churn_common.schema import FEATURE_COLUMNS
from churn_common.settings import environment_overrides
from tests.conftest import REPO_ROOT
from tests.local_servers import MLFLOW_SERVER_SETTINGS, MLFLOW_START_TIMEOUT_SECONDS, free_port, served

ENTRYPOINT = REPO_ROOT / "infra" / "docker" / "entrypoint.py"
MODEL_NAME = "XGBoostChurnModel"
ALIAS = "staging"
ADMIN = "admin"
PIPELINE = "churn-pipeline"


@dataclass(frozen=True)
class AuthServer:
    url: str
    admin: BasicCredentials
    pipeline: BasicCredentials
    auth_config: Path
    log_path: Path
    startup_seconds: float

    def as_user(self, login: BasicCredentials | None) -> AbstractContextManager[None]:
        """MLflow's client logs in with the environment's credentials (none: the session sets none)."""
        values = {"MLFLOW_TRACKING_URI": self.url}
        if login is not None:
            values |= {"MLFLOW_TRACKING_USERNAME": login.username, "MLFLOW_TRACKING_PASSWORD": login.password}
        return environment_overrides(values)

    def register(self, booster: xgboost.Booster, *, name: str = MODEL_NAME) -> str:
        """Log ``booster`` as a new version of ``name``, as the pipeline user; returns the version."""
        import mlflow
        import mlflow.xgboost

        saved = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
        mlflow.set_tracking_uri(self.url)
        mlflow.set_registry_uri(self.url)
        try:
            with self.as_user(self.pipeline), mlflow.start_run():
                # Named requirements: inferring them would load the model in a subprocess (seconds).
                info = mlflow.xgboost.log_model(
                    booster, name="model", registered_model_name=name, model_format="ubj", pip_requirements=["xgboost"]
                )
            return str(info.registered_model_version)
        finally:
            mlflow.set_tracking_uri(saved[0])
            mlflow.set_registry_uri(saved[1])


def small_booster(seed: int = 0) -> xgboost.Booster:
    """A model of the scorer's features, trained in milliseconds."""
    rng = np.random.default_rng(seed)
    features = rng.integers(0, 50, size=(64, len(FEATURE_COLUMNS))).astype(np.float32)
    labels = rng.integers(0, 2, size=64)
    return xgboost.train({"objective": "binary:logistic"}, xgboost.DMatrix(features, label=labels), num_boost_round=2)


@pytest.fixture(scope="session")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthServer]:
    folder = tmp_path_factory.mktemp("mlflow-auth-server")
    admin = BasicCredentials(username=ADMIN, password=secrets.token_urlsafe(24))
    pipeline = BasicCredentials(username=PIPELINE, password=secrets.token_urlsafe(24))
    auth_config = folder / "basic_auth.ini"
    port = free_port()
    command = [
        sys.executable,
        str(ENTRYPOINT),
        str(Path(sys.executable).with_name("mlflow")),
        "server",
        "--app-name",
        "basic-auth",
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
    environment = {
        **MLFLOW_SERVER_SETTINGS,
        "MLFLOW_AUTH_DATABASE_URI": f"sqlite:///{folder / 'auth.db'}",
        "MLFLOW_AUTH_CONFIG_PATH": str(auth_config),
        "MLFLOW_AUTH_ADMIN_USERNAME": admin.username,
        "MLFLOW_AUTH_ADMIN_PASSWORD": admin.password,
        "MLFLOW_PIPELINE_USERNAME": pipeline.username,
        "MLFLOW_PIPELINE_PASSWORD": pipeline.password,
        "MLFLOW_FLASK_SERVER_SECRET_KEY": secrets.token_urlsafe(32),
        "MODEL_NAME": MODEL_NAME,
    }
    started = time.monotonic()
    with served(
        command,
        port=port,
        health_path="/health",
        log_path=folder / "server.log",
        timeout=MLFLOW_START_TIMEOUT_SECONDS,
        name="mlflow server --app-name basic-auth",
        env=environment,
    ) as url:
        yield AuthServer(
            url=url,
            admin=admin,
            pipeline=pipeline,
            auth_config=auth_config,
            log_path=folder / "server.log",
            startup_seconds=time.monotonic() - started,
        )


@dataclass(frozen=True)
class ServedVersion:
    name: str
    alias: str
    version: str
    booster: xgboost.Booster


@pytest.fixture(scope="session")
def served_version(auth_server: AuthServer) -> ServedVersion:
    """A version registered by the pipeline user, with the serving alias set by the admin (so that the
    pipeline's own moves in the tests start from a known version)."""
    from mlflow import MlflowClient

    booster = small_booster()
    version = auth_server.register(booster)
    with auth_server.as_user(auth_server.admin):
        MlflowClient(auth_server.url, auth_server.url).set_registered_model_alias(MODEL_NAME, ALIAS, version)
    return ServedVersion(name=MODEL_NAME, alias=ALIAS, version=version, booster=booster)
