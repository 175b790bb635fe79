"""Every AWS call the local stack's components make, by the principal that made it.

The emulator enforces what it can of each deployed policy; what it cannot (conditions, ARNs of services it
authorises against "*") the IAM tests check call by call against the exact rendering. This log is their
input: a botocore event hook on the shared session records each distinct call with the parameters IAM
authorises it by.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.local.policy_documents import Policy
from infra.local.principals import current_principal

# The request parameters that name the resource a call is authorised against, or a condition key of it.
AUTHORISED_BY = frozenset(
    {"Bucket", "Key", "Prefix", "VersionId", "CopySource", "QueueUrl", "QueueName", "StreamName", "StreamARN"}
    | {"SecretId", "TopicArn", "ShardId"}
)
MAX_DISTINCT_CALLS = 100_000
_EVENT = "provide-client-params.*.*"


class AwsCallLog:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: dict[str, dict[str, Any]] = {}
        self.dropped = 0

    def attach(self, session: Any) -> None:
        """Record the calls of every client created from ``session`` from now on."""
        session.events.register(_EVENT, self._record)

    def _record(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        authorised_by = {key: value for key, value in params.items() if key in AUTHORISED_BY}
        call = {
            "principal": current_principal(),
            "service": model.service_model.service_name,
            "operation": model.name,
            "params": authorised_by,
        }
        key = json.dumps(call, sort_keys=True, default=str)
        with self._lock:
            if key in self._calls:
                return
            if len(self._calls) >= MAX_DISTINCT_CALLS:
                self.dropped += 1
                return
            self._calls[key] = call

    def calls(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._calls.values())

    def write(self, path: Path, *, policies: dict[str, Policy]) -> None:
        """The calls, with the exact policies (as Terraform renders them) they are to be checked against."""
        path.parent.mkdir(parents=True, exist_ok=True)
        document = {"policies": policies, "calls": self.calls(), "dropped": self.dropped}
        path.write_text(json.dumps(document, default=str))


@dataclass(frozen=True, slots=True)
class CallLogFile:
    policies: dict[str, Policy]
    calls: list[dict[str, Any]]


def read_call_log(path: Path) -> CallLogFile:
    document = json.loads(path.read_text())
    if document["dropped"]:
        raise ValueError(f"{path} dropped {document['dropped']} calls past {MAX_DISTINCT_CALLS} distinct ones")
    return CallLogFile(policies=document["policies"], calls=list(document["calls"]))
