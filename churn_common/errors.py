"""The pipeline's errors, split by the one question a failure handler asks: can a retry help?

:class:`PermanentError`: the same input fails the same way on every retry, so it is rejected with its
reason or dead-lettered. :class:`TransientError`: the same input may succeed later, so it is retried.
Each pipeline exception derives from one of them and keeps its builtin base as a second base, so that
``except ValueError`` and the like still catch it.

:func:`is_retryable` answers the question for any exception: ours by type, the transient faults of
boto and SQLAlchemy we know of by type (and error code), anything else as retryable. An unknown fault
is retried, then dead-lettered, and so never dropped: calling it permanent would give up on input that a
retry might have saved. The decision only chooses what a handler says and whether it gives up early; no
handler acknowledges a failure because of it.

Third-party types are looked up by their qualified names, not imported: a Lambda image that lacks
SQLAlchemy (the producer's) still imports this module, and nothing is loaded that the caller did not.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

__all__ = [
    "CLIENT_ERROR_CODES",
    "VERDICTS",
    "PermanentError",
    "PipelineError",
    "TransientError",
    "is_retryable",
]


class PipelineError(Exception):
    """Base of the pipeline's own errors. Retryable unless a subclass says otherwise: a fault nobody
    classified is treated like an unknown one."""

    retryable: ClassVar[bool] = True


class PermanentError(PipelineError):
    """The same input fails the same way on every retry: reject it with its reason or dead-letter it."""

    retryable: ClassVar[bool] = False


class TransientError(PipelineError):
    """The same input may succeed later (a service back, a password rotated, a cache refreshed): retry."""

    retryable: ClassVar[bool] = True


# AWS error codes by verdict. Throttling and server-side faults pass; refusals of the request itself
# (permissions, validation, a missing resource) fail the same way until someone changes the setup.
CLIENT_ERROR_CODES: Mapping[str, bool] = {
    **dict.fromkeys(
        (
            "ProvisionedThroughputExceededException",
            "ThrottlingException",
            "Throttling",
            "ThrottledException",
            "RequestThrottled",
            "RequestThrottledException",
            "TooManyRequestsException",
            "SlowDown",
            "RequestLimitExceeded",
            "LimitExceededException",
            "KMSThrottlingException",
            "BandwidthLimitExceeded",
            "RequestTimeout",
            "RequestTimeoutException",
            "PriorRequestNotComplete",
            "InternalFailure",
            "InternalError",
            "InternalServerError",
            "ServiceUnavailable",
            "ServiceUnavailableException",
            "ExpiredToken",
            "ExpiredTokenException",
        ),
        True,
    ),
    **dict.fromkeys(
        (
            "AccessDenied",
            "AccessDeniedException",
            "KMSAccessDeniedException",
            "UnauthorizedOperation",
            "InvalidAccessKeyId",
            "SignatureDoesNotMatch",
            "ValidationException",
            "ValidationError",
            "InvalidArgument",
            "InvalidParameterValue",
            "InvalidParameterException",
            "InvalidRequest",
            "NoSuchBucket",
            "NoSuchKey",
            "NoSuchVersion",
            "ResourceNotFoundException",
            "AWS.SimpleQueueService.NonExistentQueue",
        ),
        False,
    ),
}


def _client_error(error: BaseException) -> bool:
    response: Any = getattr(error, "response", None) or {}
    code = str(response.get("Error", {}).get("Code", ""))
    return CLIENT_ERROR_CODES.get(code, True)


def _always(verdict: bool) -> Callable[[BaseException], bool]:
    return lambda _error: verdict


# Qualified class name of a type we do not own -> verdict. The most derived listed class of an exception's
# MRO decides, so a listed subclass (OperationalError) overrides a listed base (DBAPIError).
VERDICTS: Mapping[str, Callable[[BaseException], bool]] = {
    "botocore.exceptions.ClientError": _client_error,
    # The connection failed or the answer did not come: the next attempt may reach the service.
    "botocore.exceptions.ConnectionError": _always(True),  # EndpointConnectionError, ConnectTimeoutError
    "botocore.exceptions.HTTPClientError": _always(True),  # ReadTimeoutError, ConnectionClosedError
    # The request as built is invalid: it is built the same way next time.
    "botocore.exceptions.ParamValidationError": _always(False),
    # Connection lost, database restarting, pool exhausted: a later connection may work.
    "sqlalchemy.exc.OperationalError": _always(True),
    "sqlalchemy.exc.InterfaceError": _always(True),
    "sqlalchemy.exc.DisconnectionError": _always(True),
    "sqlalchemy.exc.TimeoutError": _always(True),
    # The rows themselves break a constraint or a type: they do so on every attempt.
    "sqlalchemy.exc.IntegrityError": _always(False),
    "sqlalchemy.exc.DataError": _always(False),
    "builtins.ConnectionError": _always(True),
    "builtins.TimeoutError": _always(True),
}


def _qualified(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def is_retryable(error: BaseException) -> bool:
    """True when retrying the same input may succeed; unknown exceptions are retryable."""
    if isinstance(error, PipelineError):
        return error.retryable  # ours declare it, whatever other bases they have
    rule = next((VERDICTS[name] for cls in type(error).__mro__ if (name := _qualified(cls)) in VERDICTS), None)
    return True if rule is None else rule(error)
