"""Where the serving model comes from: the MLflow registry, over its REST API or through its client.

A Lambda talks to a tracking server over HTTP(S); for that the REST API is enough (alias lookup, then
the model file through the server), so the cold path imports neither MLflow nor pandas. Local stores
(sqlite, file) have no server: there the MLflow client is used, imported only then.

A server that requires a login (``mlflow server --app-name basic-auth``) gets HTTP basic credentials:
those of the settings (:mod:`churn_common.mlflow_credentials`), else the userinfo of the tracking URI,
which is taken out of the URL and masked wherever the URL is quoted.
"""

from __future__ import annotations

import json
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from functools import lru_cache
from http import HTTPStatus
from pathlib import Path
from typing import Protocol
from urllib.parse import urlencode, urlsplit

from pydantic import BaseModel, ValidationError

from churn_common.errors import TransientError
from churn_common.mlflow_credentials import BasicCredentials, CredentialsSource, split_userinfo
from churn_common.redaction import redact

MODEL_FILES = ("model.ubj", "model.json", "model.xgb")  # what mlflow.xgboost logs, newest format first
ALIAS_PATH = "/api/2.0/mlflow/registered-models/alias"
MODEL_VERSION_ARTIFACT_PATH = "/model-versions/get-artifact"
TIMEOUT_SECONDS = 10.0
NOT_FOUND_CODES = frozenset({"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"})
REFUSED_STATUSES = frozenset({HTTPStatus.UNAUTHORIZED, HTTPStatus.FORBIDDEN})
REST_SCHEMES = frozenset({"http", "https"})


class RegistryUnavailableError(TransientError, ConnectionError):
    """The registry did not answer (or answered with a server error): transient, the batch is retried."""


class RegistryAuthenticationError(RegistryUnavailableError):
    """The server refused the login or the permission. Retried like an outage: the fix (a password or a
    grant) happens on the server or in the secret, and the next attempt picks it up."""


class ModelNotFoundError(TransientError, LookupError):
    """The alias, version or model file does not exist: nothing can be scored until it does. Transient: the
    records are not at fault, and the retried batch is scored once someone sets the alias."""


@dataclass(frozen=True, slots=True)
class ModelVersion:
    name: str
    version: str
    source: str


@dataclass(frozen=True, slots=True)
class ModelFile:
    name: str
    content: bytes


class ModelRegistry(Protocol):
    def resolve(self, name: str, alias: str) -> ModelVersion: ...

    def model_file(self, version: ModelVersion) -> ModelFile: ...


class _AliasedVersion(BaseModel):
    name: str
    version: str
    source: str = ""


class _AliasResponse(BaseModel):
    model_version: _AliasedVersion


@dataclass(frozen=True, slots=True)
class _Answer:
    status: int
    body: bytes


class RestRegistry:
    """The registry of an MLflow tracking server, through its REST API.

    Plain ``urllib``: one request per alias check is all a warm container makes, and the standard library
    costs the cold path nothing to import (an HTTP client library would add ~0.1 s, and build a TLS context
    even for a plain-HTTP server inside the VPC)."""

    def __init__(
        self,
        tracking_uri: str,
        *,
        credentials: CredentialsSource | None = None,
        timeout_seconds: float = TIMEOUT_SECONDS,
    ) -> None:
        self._base, self._uri_credentials = split_userinfo(tracking_uri.rstrip("/"))
        # How messages name the server: the URI as configured, credentials masked.
        self._shown = redact(tracking_uri.rstrip("/"))
        self._credentials = credentials
        self._timeout = timeout_seconds

    def _login(self) -> BasicCredentials | None:
        try:
            configured = self._credentials.current() if self._credentials is not None else None
        except Exception as exc:  # the secret unreadable: denied, throttled, malformed
            raise RegistryUnavailableError(f"MLflow credentials could not be read: {redact(str(exc))}") from exc
        return configured or self._uri_credentials

    def _send(self, path: str, params: dict[str, str], login: BasicCredentials | None) -> _Answer:
        request = urllib.request.Request(f"{self._base}{path}?{urlencode(params)}")
        if login is not None:
            request.add_unredirected_header("Authorization", login.authorization)
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:
                return _Answer(response.status, response.read())
        except urllib.error.HTTPError as exc:
            answer = _Answer(exc.code, exc.read())
        except OSError as exc:  # refused, reset, timed out, name not resolved
            # Redacted: the Lambda runtime reports the raised message as it is, outside the scorer's log lines.
            raise RegistryUnavailableError(f"MLflow server {self._shown} unreachable: {redact(str(exc))}") from exc
        if answer.status >= 500:
            raise RegistryUnavailableError(f"MLflow server answered {answer.status} to {path}")
        return answer

    def _get(self, path: str, params: dict[str, str], *, what: str) -> _Answer:
        """One request; a refused login re-reads the credentials (a new password deployed) and tries once more."""
        login = self._login()
        answer = self._send(path, params, login)
        if answer.status == HTTPStatus.UNAUTHORIZED and self._credentials is not None and self._credentials.refresh():
            login = self._login()
            answer = self._send(path, params, login)
        if answer.status in REFUSED_STATUSES:
            raise _refused(answer, what=what, model_name=params["name"], server=self._shown, login=login)
        return answer

    def resolve(self, name: str, alias: str) -> ModelVersion:
        answer = self._get(ALIAS_PATH, {"name": name, "alias": alias}, what=f"{name}@{alias}")
        if answer.status != 200:
            raise _not_found_or_unavailable(answer, what=f"{name}@{alias}")
        try:
            found = _AliasResponse.model_validate_json(answer.body).model_version
        except ValidationError as exc:
            raise RegistryUnavailableError(f"unexpected answer to the lookup of {name}@{alias}: {exc}") from exc
        return ModelVersion(name=found.name, version=found.version, source=found.source)

    def model_file(self, version: ModelVersion) -> ModelFile:
        """The server reads the file wherever the version's artifacts are stored (its proxied artifact
        store, S3 or a folder), so the client needs no storage credentials."""
        for file_name in MODEL_FILES:
            params = {"name": version.name, "version": version.version, "path": file_name}
            answer = self._get(MODEL_VERSION_ARTIFACT_PATH, params, what=f"{version.name} version {version.version}")
            if answer.status == 200:
                return ModelFile(name=file_name, content=answer.body)
        tried = ", ".join(MODEL_FILES)
        raise ModelNotFoundError(f"no xgboost model file ({tried}) in {version.name} version {version.version}")


def _refused(
    answer: _Answer, *, what: str, model_name: str, server: str, login: BasicCredentials | None
) -> RegistryAuthenticationError:
    """Says what to fix: the password, the missing credentials or the user's grant; names the user, never
    the password."""
    if login is None:
        problem = (
            f"requires a login ({answer.status}); set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD, "
            "or MLFLOW_CREDENTIALS_SECRET_ARN"
        )
    elif answer.status == HTTPStatus.UNAUTHORIZED:
        problem = f"refused the password of user {login.username!r} ({answer.status})"
    else:
        problem = f"denied user {login.username!r} ({answer.status}): it needs READ on registered model {model_name}"
    return RegistryAuthenticationError(f"{what}: MLflow server {server} {problem}")


def _not_found_or_unavailable(answer: _Answer, *, what: str) -> Exception:
    """MLflow answers a missing alias with 404 or 400 and an error code; anything else (401, 403, 429,
    a proxy's HTML page) means the registry cannot be used right now."""
    try:
        body = json.loads(answer.body)
    except ValueError:
        body = None
    code = str(body.get("error_code", "")) if isinstance(body, dict) else ""
    message = str(body.get("message", "")) if isinstance(body, dict) else ""
    if answer.status == 404 or code in NOT_FOUND_CODES:
        return ModelNotFoundError(f"{what}: {message or code or answer.status}")
    return RegistryUnavailableError(f"{what}: MLflow server answered {answer.status} {code} {message}".strip())


class MlflowClientRegistry:
    """A local registry store (sqlite, file) through the MLflow client, imported on first use."""

    def __init__(self, tracking_uri: str) -> None:
        self._tracking_uri = tracking_uri

    def resolve(self, name: str, alias: str) -> ModelVersion:
        from mlflow import MlflowClient
        from mlflow.exceptions import MlflowException

        from churn_common.registry import configure_mlflow

        configure_mlflow()
        try:
            found = MlflowClient(self._tracking_uri, self._tracking_uri).get_model_version_by_alias(name, alias)
        except MlflowException as exc:
            raise ModelNotFoundError(f"{name}@{alias}: {redact(exc.message)}") from exc
        return ModelVersion(name=name, version=str(found.version), source=found.source)

    def model_file(self, version: ModelVersion) -> ModelFile:
        import mlflow.artifacts

        from churn_common.registry import configure_mlflow

        configure_mlflow()
        with tempfile.TemporaryDirectory(prefix=f"model-{version.version}-") as target:
            folder = Path(mlflow.artifacts.download_artifacts(artifact_uri=version.source, dst_path=target))
            path = next((p for name in MODEL_FILES for p in folder.rglob(name)), None)
            if path is None:
                raise ModelNotFoundError(f"no xgboost model file in {version.source}")
            return ModelFile(name=path.name, content=path.read_bytes())


@lru_cache(maxsize=8)
def registry_for(tracking_uri: str, *, credentials: CredentialsSource | None = None) -> ModelRegistry:
    """The REST client for a tracking server, the MLflow client for anything else; one per URI (and
    credentials) and process, so a warm container reuses its connections and its credentials."""
    if urlsplit(tracking_uri).scheme in REST_SCHEMES:
        return RestRegistry(tracking_uri, credentials=credentials)
    return MlflowClientRegistry(tracking_uri)
