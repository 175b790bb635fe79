"""Each component of the local stack calls AWS as its deployed role, with the emulator enforcing IAM.

On AWS every function and task has its own role. Locally the producer and the scorer run as threads of one
process, so the process-wide credential chain cannot tell them apart: the one boto3 session of
``churn_common.aws`` is given credentials that sign each request with the access key of the principal the
calling thread acts as (``acting_as``). The Lambda service acts as each function around its polls and
invocations, as Lambda uses the function's execution role for both; everything else (the harness, the demo's
uploads) acts as the operator, who holds every permission.
"""

from __future__ import annotations

import configparser
import json
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.credentials import CredentialProvider, Credentials, ReadOnlyCredentials

from infra.local.policy_documents import MONITOR, PRODUCER, STREAM_SCORER, Policy

__all__ = ["MONITOR", "OPERATOR", "PRODUCER", "STREAM_SCORER", "AccessKey", "acting_as"]

OPERATOR = "operator"
OPERATOR_POLICY: Policy = {
    "Version": "2012-10-17",
    "Statement": [{"Sid": "Everything", "Effect": "Allow", "Action": ["*"], "Resource": ["*"]}],
}
_ACTING_AS: ContextVar[str] = ContextVar("acting_as", default=OPERATOR)


@dataclass(frozen=True, slots=True)
class AccessKey:
    access_key_id: str
    secret_access_key: str

    def environment(self) -> dict[str, str]:
        """The variables a process of this principal gets, as Lambda and ECS hand a role's keys over."""
        return {"AWS_ACCESS_KEY_ID": self.access_key_id, "AWS_SECRET_ACCESS_KEY": self.secret_access_key}


@contextmanager
def acting_as(principal: str) -> Iterator[None]:
    """AWS calls made in this context (and in contexts copied from it) are signed as ``principal``."""
    token = _ACTING_AS.set(principal)
    try:
        yield
    finally:
        _ACTING_AS.reset(token)


def current_principal() -> str:
    return _ACTING_AS.get()


class PrincipalCredentials(Credentials):
    """botocore asks credentials for their frozen value on every request it signs; these answer with the key
    of the principal the calling context acts as. One instance per process, re-keyed by each stack start, so
    a client that outlives a restarted stack signs with the new stack's keys."""

    def __init__(self) -> None:
        super().__init__("unset", "unset", method="local-principals")
        self._keys: dict[str, AccessKey] = {}

    def use(self, keys: Mapping[str, AccessKey]) -> None:
        self._keys = dict(keys)

    def get_frozen_credentials(self) -> ReadOnlyCredentials:
        principal = _ACTING_AS.get()
        try:
            key = self._keys[principal]
        except KeyError:
            raise LookupError(f"no emulator principal named {principal!r}") from None
        return ReadOnlyCredentials(key.access_key_id, key.secret_access_key, None)


_CREDENTIALS = PrincipalCredentials()


class _PrincipalCredentialProvider(CredentialProvider):
    METHOD = "local-principals"
    CANONICAL_NAME = "customLocalPrincipals"

    def load(self) -> PrincipalCredentials:
        return _CREDENTIALS


def sign_as_principals(session: Any, keys: Mapping[str, AccessKey]) -> None:
    """Make ``session`` (a boto3 session no client has been created from yet) sign as the acting principal."""
    _CREDENTIALS.use(keys)
    resolver = session._session.get_component("credential_provider")
    if not any(isinstance(provider, _PrincipalCredentialProvider) for provider in resolver.providers):
        resolver.insert_before("env", _PrincipalCredentialProvider())


def create_principals(iam: Any, policies: Mapping[str, Policy]) -> dict[str, AccessKey]:
    """One emulator user per principal, holding exactly its policy as an inline policy, with an access key."""
    keys: dict[str, AccessKey] = {}
    for name, policy in {OPERATOR: OPERATOR_POLICY, **policies}.items():
        iam.create_user(UserName=name)
        iam.put_user_policy(UserName=name, PolicyName=f"{name}-deployed", PolicyDocument=json.dumps(policy))
        created = iam.create_access_key(UserName=name)["AccessKey"]
        keys[name] = AccessKey(access_key_id=created["AccessKeyId"], secret_access_key=created["SecretAccessKey"])
    return keys


def write_credentials_file(path: Path, keys: Mapping[str, AccessKey]) -> None:
    """The principals' keys as an AWS shared-credentials file, one profile each: what a second shell (the
    simulators, the AWS CLI, localstack-client) signs with to reach the running stack as the operator."""
    profiles = configparser.ConfigParser()
    for name, key in keys.items():
        profiles[name] = {"aws_access_key_id": key.access_key_id, "aws_secret_access_key": key.secret_access_key}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=True)
    with path.open("w") as handle:
        profiles.write(handle)


def read_credentials_file(path: Path, principal: str = OPERATOR) -> AccessKey:
    profiles = configparser.ConfigParser()
    if not profiles.read(path) or principal not in profiles:
        raise LookupError(f"no {principal} profile in {path}: is the local stack running (make stack)?")
    profile = profiles[principal]
    return AccessKey(access_key_id=profile["aws_access_key_id"], secret_access_key=profile["aws_secret_access_key"])


def enforce_iam(endpoint_url: str, *, enabled: bool = True) -> None:
    """Turn the emulator's IAM enforcement on from the next request (off: every request is allowed)."""
    count = "0" if enabled else "inf"
    request = urllib.request.Request(
        f"{endpoint_url}/moto-api/reset-auth",
        data=count.encode(),
        method="POST",
        headers={"Content-Type": "text/plain"},  # a form body would be parsed away before the emulator reads it
    )
    with urllib.request.urlopen(request, timeout=10):
        pass
