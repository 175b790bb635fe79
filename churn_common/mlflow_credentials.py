"""Who the pipeline is to an MLflow server that requires a login (``mlflow server --app-name basic-auth``).

Without a login anyone who reaches the server could move the serving alias and so replace the production
model. MLflow's own client reads ``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD`` from the
environment: ECS injects them from Secrets Manager into the worker, and ``make model-registry`` takes them
from the shell. A Lambda function gets no injected secrets, and a password in its configuration would be
readable by whoever may read the function, so the scorer gets the secret's ARN
(``MLFLOW_CREDENTIALS_SECRET_ARN``) and reads the secret (JSON ``username`` / ``password``) at cold start,
the way it reads the database secret (:mod:`churn_common.database_credentials`), and again when the
server refuses the password (a deployment with a new one).

MLflow's errors quote the URL they requested, userinfo included, so :func:`mlflow_errors_redacted` keeps a
password written into ``MLFLOW_TRACKING_URI`` out of the errors that reach logs and the ledger.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Protocol
from urllib.parse import unquote, urlsplit, urlunsplit

from churn_common.database_credentials import (
    MIN_SECONDS_BETWEEN_READS,
    FetchSecret,
    RotatingCredentials,
    fetch_secret_string,
)
from churn_common.errors import PermanentError, PipelineError, TransientError, is_retryable
from churn_common.redaction import redact
from churn_common.settings import Settings


@dataclass(frozen=True, slots=True)
class BasicCredentials:
    username: str
    password: str = field(repr=False)

    @property
    def authorization(self) -> str:
        """The value of an HTTP ``Authorization`` header (RFC 7617)."""
        token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode("ascii")
        return f"Basic {token}"


class CredentialsSource(Protocol):
    def current(self) -> BasicCredentials | None: ...

    def refresh(self) -> bool:
        """Look again (after a refused login); True when the credentials changed."""
        ...


@dataclass(frozen=True, slots=True)
class FixedCredentials:
    """Credentials that cannot change while the process runs (environment variables, or none)."""

    credentials: BasicCredentials | None

    def current(self) -> BasicCredentials | None:
        return self.credentials

    def refresh(self) -> bool:
        return False


class SecretCredentials:
    """The credentials of a Secrets Manager secret, read on first use and again after a refused login."""

    def __init__(
        self,
        secret_arn: str,
        *,
        fetch: FetchSecret = fetch_secret_string,
        min_seconds_between_reads: float = MIN_SECONDS_BETWEEN_READS,
    ) -> None:
        self.secret_arn = secret_arn
        self._secret = RotatingCredentials(secret_arn, fetch=fetch, min_seconds_between_reads=min_seconds_between_reads)

    def current(self) -> BasicCredentials:
        read = self._secret.current()
        return BasicCredentials(username=read.username, password=read.password)

    def refresh(self) -> bool:
        return self._secret.refresh()


def split_userinfo(uri: str) -> tuple[str, BasicCredentials | None]:
    """``uri`` without its userinfo, and the credentials that the userinfo held (percent-decoded).

    The userinfo ends at the last ``@`` of the authority, as in :func:`churn_common.redaction.redact`."""
    parts = urlsplit(uri)
    userinfo, at, host = parts.netloc.rpartition("@")
    if not at:
        return uri, None
    username, _, password = userinfo.partition(":")
    bare = urlunsplit(parts._replace(netloc=host))
    return bare, BasicCredentials(username=unquote(username), password=unquote(password))


def credentials_source(settings: Settings) -> CredentialsSource:
    """Environment variables first, else the secret; one source per configuration and process, so that a
    warm container reads the secret once."""
    password = settings.mlflow_tracking_password.get_secret_value() if settings.mlflow_tracking_password else None
    return _source(settings.mlflow_tracking_username, password, settings.mlflow_credentials_secret_arn)


@lru_cache(maxsize=8)
def _source(username: str | None, password: str | None, secret_arn: str | None) -> CredentialsSource:
    if username and password:
        return FixedCredentials(BasicCredentials(username=username, password=password))
    if secret_arn:
        return SecretCredentials(secret_arn)
    return FixedCredentials(None)


def mlflow_username(settings: Settings) -> str | None:
    """The user MLflow's client logs in as (environment, else the URI's userinfo); None for a local store."""
    if settings.mlflow_tracking_username:
        return settings.mlflow_tracking_username
    _, from_uri = split_userinfo(settings.resolved_mlflow_uri)
    return from_uri.username if from_uri else None


class MlflowRequestError(PipelineError, RuntimeError):
    """An MLflow call failed with a text that quoted credentials; this is that text, redacted. The original
    cannot travel along (its text is what must not be shown), so the subclass raised carries its verdict."""


class TransientMlflowRequestError(MlflowRequestError, TransientError):
    """The redacted failure was retryable (a timeout, a refused connection, an unknown fault)."""


class PermanentMlflowRequestError(MlflowRequestError, PermanentError):
    """The redacted failure fails the same way on every retry."""


_REDACTED_AS: dict[bool, type[MlflowRequestError]] = {
    True: TransientMlflowRequestError,
    False: PermanentMlflowRequestError,
}


@contextmanager
def mlflow_errors_redacted() -> Iterator[None]:
    """Re-raise an error whose text holds a URL with credentials as :class:`MlflowRequestError` with the
    credentials masked, transient or permanent as :func:`~churn_common.errors.is_retryable` judged the
    original. Other errors pass unchanged, so callers keep catching the types they know. The
    original is not shown as the context of the new error (its text is what must not be shown); the new
    error keeps its frames, so the traceback still points at the failed call."""
    try:
        yield
    except Exception as exc:
        text = str(exc)
        if redact(text) == text:
            raise
        redacted = _REDACTED_AS[is_retryable(exc)](f"{type(exc).__name__}: {redact(text)}")
        raise redacted.with_traceback(exc.__traceback__) from None
