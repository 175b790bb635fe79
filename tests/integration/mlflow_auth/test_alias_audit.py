"""Every alias move goes through ``training.aliases.move_alias`` and leaves its audit entry: tags on the
version the alias now names (read back with ``alias_history``) and one JSON log line."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from churn_common.settings import get_settings
from tests.integration.mlflow_auth.conftest import AuthServer, ServedVersion
from training.aliases import AUDIT_EVENT, alias_history, audit_tag, move_alias, os_user

pytestmark = pytest.mark.integration


def _audit_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, object]]:
    lines = [json.loads(record.getMessage()) for record in caplog.records if AUDIT_EVENT in record.getMessage()]
    return [line for line in lines if line["event"] == AUDIT_EVENT]


def test_alias_moves_leave_who_when_and_from_which_version(
    auth_server: AuthServer, served_version: ServedVersion, caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN two versions of the model and an alias of this test's own, not yet set
    alias = f"audit-{uuid.uuid4().hex[:8]}"
    first, second = served_version.version, auth_server.register(served_version.booster)
    caplog.set_level("INFO", logger="training.aliases")
    with auth_server.as_user(auth_server.pipeline):
        registry = MlflowClient(auth_server.url, auth_server.url)
        before = datetime.now(tz=UTC)
        # WHEN the pipeline user points the alias at the first version, then moves it to the second
        move_alias(registry, model_name=served_version.name, alias=alias, version=first, settings=get_settings())
        move_alias(registry, model_name=served_version.name, alias=alias, version=second, settings=get_settings())
        # THEN the alias names the second version
        assert registry.get_model_version_by_alias(served_version.name, alias).version == second
        # AND each version's tags tell who moved the alias onto it, when, and from where
        tags = registry.get_model_version(served_version.name, second).tags
        history = alias_history(registry, model_name=served_version.name, alias=alias)
    assert tags[audit_tag(alias, "moved_from")] == first
    assert tags[audit_tag(alias, "moved_by")] == auth_server.pipeline.username
    assert tags[audit_tag(alias, "moved_by_os_user")] == os_user()
    assert tags[audit_tag(alias, "moved_by_flow_run")] == "none"
    assert [(m.from_version, m.to_version) for m in history] == [(None, first), (first, second)]
    assert all(before <= m.moved_at <= datetime.now(tz=UTC) + timedelta(seconds=1) for m in history)
    # AND one JSON log line per move says the same
    lines = _audit_lines(caplog)
    assert [(line["alias"], line["from_version"], line["to_version"]) for line in lines] == [
        (alias, None, first),
        (alias, first, second),
    ]
    assert {line["moved_by"] for line in lines} == {auth_server.pipeline.username}


def test_a_refused_move_leaves_the_alias_and_no_audit_entry(
    auth_server: AuthServer, served_version: ServedVersion, caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN a client without a login
    alias = f"audit-{uuid.uuid4().hex[:8]}"
    caplog.set_level("INFO", logger="training.aliases")
    # WHEN it tries to move an alias through the same function
    with pytest.raises(MlflowException, match="401"):
        move_alias(
            MlflowClient(auth_server.url, auth_server.url),
            model_name=served_version.name,
            alias=alias,
            version=served_version.version,
            settings=get_settings(),
        )
    # THEN nothing moved and nothing was recorded
    with auth_server.as_user(auth_server.admin):
        registry = MlflowClient(auth_server.url, auth_server.url)
        assert alias not in registry.get_registered_model(served_version.name).aliases
        assert alias_history(registry, model_name=served_version.name, alias=alias) == []
    assert _audit_lines(caplog) == []


def _run_log(run_id: str) -> list[str]:
    """The messages a flow run's log holds on the Prefect server."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.logging.handlers import APILogHandler

    APILogHandler().flush()
    with get_client(sync_client=True) as prefect:
        logs = prefect.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[uuid.UUID(run_id)])))
    return [log.message for log in logs]


def test_a_move_inside_a_flow_run_names_the_run_and_logs_to_it(
    auth_server: AuthServer, served_version: ServedVersion, prefect_server: str
) -> None:
    from prefect import flow
    from prefect.runtime import flow_run

    alias = f"audit-{uuid.uuid4().hex[:8]}"

    @flow(name="move-alias")
    def moving() -> str:
        move_alias(
            MlflowClient(auth_server.url, auth_server.url),
            model_name=served_version.name,
            alias=alias,
            version=served_version.version,
            settings=get_settings(),
        )
        return str(flow_run.id)

    # GIVEN the pipeline's login, as the worker's flow runs have it
    with auth_server.as_user(auth_server.pipeline):
        # WHEN a flow run moves the alias (as the retraining does)
        run_id = moving()
        tags = (
            MlflowClient(auth_server.url, auth_server.url)
            .get_model_version(served_version.name, served_version.version)
            .tags
        )
    # THEN the version's tags name that flow run, and the audit line went to the run's own log
    assert tags[audit_tag(alias, "moved_by_flow_run")] == run_id
    (line,) = [json.loads(text) for text in _run_log(run_id) if AUDIT_EVENT in text]
    assert line["moved_by_flow_run"] == run_id
    assert line["moved_by"] == auth_server.pipeline.username
