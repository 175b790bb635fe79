"""The one way the pipeline moves a registry alias, and the audit entry every move leaves.

An alias decides what the scorer serves, so each move records who moved it, when, and from which version
to which: as ``alias.<alias>.moved_*`` tags on the version the alias now names (read back by
:func:`alias_history`; they show only the latest move onto each version), and as one JSON log line per move
(``"event": "model_alias_moved"``), which keeps every move. Neither is tamper-proof: they tell what
happened to the alias; proving that nobody else touched it is the MLflow server login's job.

Design notes: docs/training.md#alias-audit-trail
"""

from __future__ import annotations

import getpass
import json
import logging
import os
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

from churn_common.mlflow_credentials import mlflow_username
from churn_common.settings import Settings

if TYPE_CHECKING:  # imported where it is used: `import mlflow` costs about a second
    from mlflow import MlflowClient

log = logging.getLogger(__name__)

AUDIT_EVENT = "model_alias_moved"
TAG_PREFIX = "alias"
NOBODY = "none"  # the value of an audit tag that has nothing to say (no previous version, no flow run)
ANONYMOUS = "anonymous"  # the MLflow user of a local store, which has no login
AUDIT_FIELDS = ("moved_from", "moved_at", "moved_by", "moved_by_os_user", "moved_by_flow_run")


def audit_tag(alias: str, field: str) -> str:
    """``alias.<alias>.<field>``: one tag key per alias, so a version serving two aliases keeps both records."""
    return f"{TAG_PREFIX}.{alias}.{field}"


class AliasMove(BaseModel):
    """One move of ``alias`` to ``to_version``; ``from_version`` is None when the alias did not exist."""

    model_config = ConfigDict(frozen=True)

    model_name: str
    alias: str
    from_version: str | None
    to_version: str
    moved_at: datetime
    moved_by: str
    moved_by_os_user: str
    moved_by_flow_run: str | None

    def tags(self) -> dict[str, str]:
        values = {
            "moved_from": self.from_version or NOBODY,
            "moved_at": self.moved_at.isoformat(),
            "moved_by": self.moved_by,
            "moved_by_os_user": self.moved_by_os_user,
            # Written even when empty, so that a tag left by an earlier move of the flow does not stay.
            "moved_by_flow_run": self.moved_by_flow_run or NOBODY,
        }
        return {audit_tag(self.alias, field): value for field, value in values.items()}

    def log_line(self) -> str:
        """One flat JSON object, so that CloudWatch Logs Insights can filter on every field."""
        return json.dumps({"event": AUDIT_EVENT, **self.model_dump(mode="json")})

    @classmethod
    def from_tags(cls, *, model_name: str, alias: str, version: str, tags: dict[str, str]) -> AliasMove | None:
        """The move recorded in a version's tags, or None when the alias never moved onto it."""
        values = {field: tags.get(audit_tag(alias, field)) for field in AUDIT_FIELDS}
        if values["moved_at"] is None:
            return None
        return cls(
            model_name=model_name,
            alias=alias,
            from_version=_absent_as_none(values["moved_from"]),
            to_version=version,
            moved_at=datetime.fromisoformat(str(values["moved_at"])),
            moved_by=values["moved_by"] or ANONYMOUS,
            moved_by_os_user=values["moved_by_os_user"] or NOBODY,
            moved_by_flow_run=_absent_as_none(values["moved_by_flow_run"]),
        )


def _absent_as_none(value: str | None) -> str | None:
    return None if value in {None, NOBODY} else value


def os_user() -> str:
    """The login name, or the uid where the container has no passwd entry for it (Lambda, ECS)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid {os.getuid()}"


def current_flow_run() -> str | None:
    """The Prefect flow run this process is executing, if any. A flow run exists only in a process that
    has imported Prefect, so training alone does not pay for importing it."""
    if "prefect" not in sys.modules:
        return None
    from prefect.runtime import flow_run

    run_id = flow_run.id
    return str(run_id) if run_id else None


def audit_logger(flow_run: str | None) -> logging.Logger | logging.LoggerAdapter[logging.Logger]:
    """Inside a flow run, Prefect's run logger: the line then shows in the run's log, where Prefect's
    logging set-up (root at WARNING) would drop an INFO line of this module."""
    if flow_run is None:
        return log
    from prefect import get_run_logger
    from prefect.exceptions import MissingContextError

    try:
        return get_run_logger()
    except MissingContextError:  # a flow run's process, outside the flow's own context
        return log


def move_alias(client: MlflowClient, *, model_name: str, alias: str, version: str, settings: Settings) -> AliasMove:
    """Point ``alias`` at ``version``, then leave the audit entry (log line first: the move has happened
    even if writing the tags fails)."""
    previous = client.get_registered_model(model_name).aliases.get(alias)
    client.set_registered_model_alias(model_name, alias, version)
    move = AliasMove(
        model_name=model_name,
        alias=alias,
        from_version=None if previous is None else str(previous),
        to_version=str(version),
        moved_at=datetime.now(tz=UTC),
        moved_by=mlflow_username(settings) or ANONYMOUS,
        moved_by_os_user=os_user(),
        moved_by_flow_run=current_flow_run(),
    )
    audit_logger(move.moved_by_flow_run).info(move.log_line())
    for key, value in move.tags().items():
        client.set_model_version_tag(model_name, move.to_version, key, value)
    return move


def alias_history(client: MlflowClient, *, model_name: str, alias: str) -> list[AliasMove]:
    """The recorded moves of ``alias``, oldest first: the latest move onto each version that received it."""
    moves = (
        AliasMove.from_tags(model_name=model_name, alias=alias, version=str(found.version), tags=dict(found.tags))
        for found in client.search_model_versions(f"name = '{model_name}'")
    )
    return sorted((move for move in moves if move is not None), key=lambda move: move.moved_at)
