"""The live promotion's alias moves under the pipeline user's login, as deployed: EDIT on the model lets it
move aliases but not delete one, so a decided challenger's alias is parked on the serving version."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from batch_monitor.core import Window
from batch_monitor.retraining.live_promotion import LiveDecision, LiveVerdict, LiveWindow
from batch_monitor.retraining.live_registry import DECISION_TAG, apply_decision
from churn_common.settings import get_settings
from tests.integration.mlflow_auth.conftest import AuthServer, ServedVersion
from training import move_alias

pytestmark = pytest.mark.integration

START = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)
MODEL_RESOURCE = "registered_model"
EDIT = "EDIT"


@pytest.fixture
def pipeline_holds_edit(auth_server: AuthServer, served_version: ServedVersion) -> Iterator[None]:
    """The pipeline user's grant on the model as every server start sets it (EDIT), not the MANAGE MLflow
    gives the creator of a model until then; the grant it had is given back afterwards."""
    from mlflow.server import get_app_client

    user = auth_server.pipeline.username
    with auth_server.as_user(auth_server.admin):
        grants = get_app_client("basic-auth", tracking_uri=auth_server.url)
        before = grants.get_user_permission(user, MODEL_RESOURCE, served_version.name).permission
        grants.revoke_user_permission(user, MODEL_RESOURCE, served_version.name)
        grants.grant_user_permission(user, MODEL_RESOURCE, served_version.name, EDIT)
    try:
        yield
    finally:
        with auth_server.as_user(auth_server.admin):
            grants.revoke_user_permission(user, MODEL_RESOURCE, served_version.name)
            grants.grant_user_permission(user, MODEL_RESOURCE, served_version.name, before)


def decided(verdict: LiveVerdict, *, serving: str, challenger: str, challenger_f1: float) -> LiveDecision:
    window = LiveWindow(
        window=Window(START, START + timedelta(minutes=5)),
        model_version=serving,
        challenger_version=challenger,
        f1=0.8,
        challenger_f1=challenger_f1,
    )
    return LiveDecision(verdict, serving, challenger, (window,), reason=f"{verdict} on one window")


@pytest.mark.usefixtures("pipeline_holds_edit")
def test_the_pipeline_login_retires_and_promotes_challengers_without_deleting_an_alias(
    auth_server: AuthServer, served_version: ServedVersion
) -> None:
    # GIVEN the pipeline user's login, three versions, and aliases of this test's own (the session's serving
    # alias is other tests'): serving on the first version, challenger on the second
    suffix = uuid.uuid4().hex[:8]
    first = served_version.version
    second, third = auth_server.register(served_version.booster), auth_server.register(served_version.booster)
    with auth_server.as_user(auth_server.pipeline):
        registry = MlflowClient(auth_server.url, auth_server.url)
        settings = get_settings().model_copy(
            update={
                "model_name": served_version.name,
                "model_alias": f"serving-{suffix}",
                "challenger_alias": f"challenger-{suffix}",
            }
        )
        serving, challenger = settings.model_alias, settings.challenger_alias

        def aliases() -> dict[str, str]:
            found = registry.get_registered_model(served_version.name).aliases
            return {name: str(found[name]) for name in (serving, challenger) if name in found}

        move_alias(registry, model_name=served_version.name, alias=serving, version=first, settings=settings)
        move_alias(registry, model_name=served_version.name, alias=challenger, version=second, settings=settings)
        # AND this login may not delete an alias (what removing the challenger alias would need)
        with pytest.raises(MlflowException, match=r"403|PERMISSION_DENIED"):
            registry.delete_registered_model_alias(served_version.name, challenger)

        # WHEN the second version loses its trial
        retire = decided(LiveVerdict.RETIRE, serving=first, challenger=second, challenger_f1=0.6)
        apply_decision(registry, retire, status="retired", settings=settings)
        # THEN the serving alias stays, the challenger alias is parked on the serving version, the decision tagged
        assert aliases() == {serving: first, challenger: first}
        assert registry.get_model_version(served_version.name, second).tags[DECISION_TAG] == "retired"

        # WHEN the third version goes on trial and wins
        move_alias(registry, model_name=served_version.name, alias=challenger, version=third, settings=settings)
        promote = decided(LiveVerdict.PROMOTE, serving=first, challenger=third, challenger_f1=0.9)
        apply_decision(registry, promote, status="promoted", settings=settings)
        # THEN it serves, and the challenger alias is parked on it
        assert aliases() == {serving: third, challenger: third}
        assert registry.get_model_version(served_version.name, third).tags[DECISION_TAG] == "promoted"
