"""MLflow's artifact store works under the task role Terraform grants the MLflow server, and only under it.

A real ``mlflow server`` proxies artifacts to ``s3://<bucket>/mlflow-artifacts/`` on the local stack's
emulator, signing as the emulator principal that holds the rendered ``mlflow`` policy with IAM enforced: a
model logged through it lands under the prefix and the server lists it. The same server signing as the
producer cannot store it. (Downloads go through presigned URLs, which the emulator's IAM check cannot
verify, so loading back is not part of this test.)
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import mlflow
import mlflow.artifacts
import mlflow.xgboost
import numpy as np
import pytest
import xgboost as xgb
from mlflow.exceptions import MlflowException

from churn_common.aws import client
from churn_common.settings import get_settings
from infra.local.policy_documents import MLFLOW, PRODUCER, bucket_prefixes
from infra.local.stack import LocalStack, emulator_url
from tests.conftest import free_port
from tests.local_servers import mlflow_server
from training.model import pyfunc_requirements

pytestmark = pytest.mark.integration


@pytest.fixture
def stack(env, tmp_path: Path) -> Iterator[LocalStack]:  # type: ignore[no-untyped-def]
    env(LOCAL_STATE_DIR=str(tmp_path / "state"), LOCAL_AWS_PORT=str(free_port()))
    with LocalStack(with_prefect=False) as running:
        yield running


def small_model() -> xgb.Booster:
    rows = np.random.default_rng(3).random((40, 3))
    return xgb.train({"objective": "binary:logistic"}, xgb.DMatrix(rows, label=rows[:, 0] > 0.5), 2)


def log_through(server: str) -> set[str]:
    """Log a model through ``server`` (artifacts proxied by it); the names of its files as the server lists them."""
    mlflow.set_tracking_uri(server)
    try:
        with mlflow.start_run():
            info = mlflow.xgboost.log_model(small_model(), name="model", pip_requirements=list(pyfunc_requirements()))
        return {Path(item.path).name for item in mlflow.artifacts.list_artifacts(artifact_uri=info.model_uri)}
    finally:
        mlflow.set_tracking_uri(get_settings().resolved_mlflow_uri)


def served_as(stack: LocalStack, principal: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    settings = get_settings()
    prefix = bucket_prefixes()["mlflow"].rstrip("/")
    environment = {
        **stack.principal_environment(principal),
        "AWS_ENDPOINT_URL": emulator_url(settings),
        "MLFLOW_S3_ENDPOINT_URL": emulator_url(settings),
        "AWS_DEFAULT_REGION": settings.aws_region,
    }
    return mlflow_server(
        backend_store_uri=f"sqlite:///{tmp_path / f'{principal}.db'}",
        artifacts=f"s3://{settings.bucket}/{prefix}",
        log_path=tmp_path / f"mlflow-{principal}.log",
        env=environment,
    )


def test_the_mlflow_server_stores_and_lists_artifacts_under_its_deployed_role(
    stack: LocalStack, tmp_path: Path
) -> None:
    # GIVEN an MLflow server signing as the principal holding the rendered mlflow policy, IAM enforced
    with served_as(stack, MLFLOW, tmp_path) as server:
        # WHEN a model is logged through it and its files are listed through it
        names = log_through(server)
    # THEN the server lists what it stored, and the files are under the artifact prefix of the data bucket
    assert {"MLmodel", "model.ubj"} <= names
    stored = client("s3").list_objects_v2(Bucket=get_settings().bucket, Prefix=bucket_prefixes()["mlflow"])
    assert {"MLmodel", "model.ubj"} <= {Path(item["Key"]).name for item in stored.get("Contents", [])}


def test_the_same_server_signing_as_another_role_cannot_store_artifacts(
    stack: LocalStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # a refusal is final: no backing off for minutes
    # GIVEN the server signing as the producer, whose role grants nothing under the artifact prefix
    # WHEN a model is logged through it, THEN the upload is refused
    with served_as(stack, PRODUCER, tmp_path) as server, pytest.raises(MlflowException):
        log_through(server)
    listed = client("s3").list_objects_v2(Bucket=get_settings().bucket, Prefix=bucket_prefixes()["mlflow"])
    assert listed.get("KeyCount", 0) == 0
