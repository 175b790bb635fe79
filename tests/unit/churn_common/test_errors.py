"""Permanent vs transient, decided by type: every pipeline exception's class, and is_retryable on the
third-party exceptions the pipeline meets (real botocore and SQLAlchemy exceptions, not look-alikes)."""

from __future__ import annotations

import urllib.error
from collections import Counter
from collections.abc import Callable

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ParamValidationError,
    ReadTimeoutError,
)
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, InterfaceError, OperationalError, ProgrammingError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from batch_monitor.early_warning.detector import ConcurrentRunError
from batch_monitor.evaluation.reference import ReferenceNotFoundError
from batch_monitor.flow import DetectorFailedError, LabelsFailedError, PruneFailedError, WindowsFailedError
from batch_monitor.labels.formats import LabelFileError
from batch_monitor.retraining.challenger import NotEnoughDataError
from churn_common.errors import PermanentError, PipelineError, TransientError, is_retryable
from churn_common.mlflow_credentials import (
    MlflowRequestError,
    PermanentMlflowRequestError,
    TransientMlflowRequestError,
    mlflow_errors_redacted,
)
from producer.aggregation import RecordTooLargeError
from producer.file_processor import AccountingError, ObjectGoneError, ObjectReplacedError
from producer.kinesis_writer import KinesisEntriesRefusedError, KinesisPutError, KinesisRetriesExhaustedError
from producer.s3_events import NotificationError
from producer.splitter import FileFormatError
from stream_scorer.kinesis_event import UnexpectedEventError
from stream_scorer.model_registry import ModelNotFoundError, RegistryAuthenticationError, RegistryUnavailableError
from stream_scorer.sink import StaleDeliveryIdsError

PERMANENT, TRANSIENT = PermanentError, TransientError


def _codes(code: str) -> dict[str, Counter[str]]:
    return {"failed_entries": 1, "error_codes": Counter({code: 1})}  # type: ignore[dict-item]


PIPELINE_ERRORS: list[tuple[Callable[[], Exception], type[PipelineError], type[Exception]]] = [
    (lambda: NotificationError(expected="an S3 event", arrived="text", problem="unknown shape"), PERMANENT, ValueError),
    (lambda: FileFormatError("not a CSV"), PERMANENT, ValueError),
    (lambda: RecordTooLargeError("2 MiB"), PERMANENT, ValueError),
    (lambda: AccountingError("3 records acknowledged for 4 rows"), PERMANENT, RuntimeError),
    (lambda: ObjectGoneError("s3://b/k"), PERMANENT, LookupError),
    (lambda: ObjectReplacedError("s3://b/k"), PERMANENT, LookupError),
    (lambda: KinesisEntriesRefusedError("refused", **_codes("KMSAccessDeniedException")), PERMANENT, RuntimeError),
    (lambda: KinesisRetriesExhaustedError("8 attempts", **_codes("ThrottlingException")), TRANSIENT, RuntimeError),
    (lambda: RegistryUnavailableError("no answer"), TRANSIENT, ConnectionError),
    (lambda: RegistryAuthenticationError("401"), TRANSIENT, ConnectionError),
    (lambda: ModelNotFoundError("churn@champion"), TRANSIENT, LookupError),
    (lambda: StaleDeliveryIdsError(3), TRANSIENT, RuntimeError),
    (lambda: UnexpectedEventError(arrived="an SQS event", problem="wrong source"), PERMANENT, ValueError),
    (lambda: TransientMlflowRequestError("TimeoutError: ..."), TRANSIENT, RuntimeError),
    (lambda: PermanentMlflowRequestError("ClientError: ..."), PERMANENT, RuntimeError),
    (lambda: ConcurrentRunError("another run moved the detector"), TRANSIENT, RuntimeError),
    (lambda: ReferenceNotFoundError("no reference for version 3"), PERMANENT, LookupError),
    (lambda: WindowsFailedError("2 windows"), TRANSIENT, RuntimeError),
    (lambda: DetectorFailedError("detector"), TRANSIENT, RuntimeError),
    (lambda: PruneFailedError("prune"), TRANSIENT, RuntimeError),
    (lambda: LabelsFailedError("labels"), TRANSIENT, RuntimeError),
    (lambda: LabelFileError("corrupt gzip data"), PERMANENT, ValueError),
    (lambda: NotEnoughDataError("12 labelled records"), PERMANENT, ValueError),
]


@pytest.mark.parametrize(
    ("make", "kind", "builtin"), [pytest.param(*case, id=type(case[0]()).__name__) for case in PIPELINE_ERRORS]
)
def test_each_pipeline_error_is_permanent_or_transient_and_keeps_its_builtin_base(
    make: Callable[[], Exception], kind: type[PipelineError], builtin: type[Exception]
) -> None:
    # GIVEN a pipeline exception
    error = make()
    # WHEN it is classified THEN its class says permanent or transient, and is_retryable agrees
    assert isinstance(error, kind)
    assert is_retryable(error) is (kind is TRANSIENT) is type(error).retryable
    # AND the builtin base it had still catches it
    with pytest.raises(builtin):
        raise error


@pytest.mark.parametrize(
    ("error_type", "retryable"),
    [(KinesisEntriesRefusedError, False), (KinesisRetriesExhaustedError, True)],
)
def test_both_kinesis_put_failures_are_still_caught_as_kinesis_put_error(
    error_type: type[KinesisPutError], retryable: bool
) -> None:
    # GIVEN a PutRecords failure of either cause WHEN raised THEN callers that catch KinesisPutError catch it
    with pytest.raises(KinesisPutError) as raised:
        raise error_type("PutRecords failed", **_codes("InternalFailure"))
    # AND the cause decides whether a retry of the file can help
    assert is_retryable(raised.value) is retryable
    assert raised.value.failed_entries == 1


def _client_error(code: str, status: int = 400) -> ClientError:
    response = {"Error": {"Code": code, "Message": "..."}, "ResponseMetadata": {"HTTPStatusCode": status}}
    return ClientError(response, "PutRecords")  # type: ignore[arg-type]


def _dbapi(error_type: type[DBAPIError]) -> DBAPIError:
    return error_type("INSERT INTO predictions ...", {}, Exception("driver says no"))


@pytest.mark.parametrize(
    ("make", "retryable"),
    [
        pytest.param(lambda: _client_error("ProvisionedThroughputExceededException"), True, id="kinesis-throughput"),
        pytest.param(lambda: _client_error("ThrottlingException"), True, id="throttling"),
        pytest.param(lambda: _client_error("SlowDown", 503), True, id="s3-slow-down"),
        pytest.param(lambda: _client_error("RequestLimitExceeded"), True, id="request-limit"),
        pytest.param(lambda: _client_error("InternalError", 500), True, id="s3-internal-error"),
        pytest.param(lambda: _client_error("AccessDenied", 403), False, id="access-denied"),
        pytest.param(lambda: _client_error("AccessDeniedException"), False, id="access-denied-exception"),
        pytest.param(lambda: _client_error("ResourceNotFoundException"), False, id="resource-not-found"),
        pytest.param(lambda: _client_error("SomethingNewException"), True, id="unknown-aws-code"),
        pytest.param(lambda: EndpointConnectionError(endpoint_url="http://s3.local"), True, id="endpoint-connection"),
        pytest.param(lambda: ConnectTimeoutError(endpoint_url="http://s3.local"), True, id="connect-timeout"),
        pytest.param(lambda: ReadTimeoutError(endpoint_url="http://s3.local"), True, id="read-timeout"),
        pytest.param(lambda: ConnectionClosedError(endpoint_url="http://s3.local"), True, id="connection-closed"),
        pytest.param(lambda: ParamValidationError(report="Missing Bucket"), False, id="param-validation"),
        pytest.param(lambda: _dbapi(OperationalError), True, id="sqlalchemy-operational"),
        pytest.param(lambda: _dbapi(InterfaceError), True, id="sqlalchemy-interface"),
        pytest.param(lambda: PoolTimeoutError("QueuePool limit reached"), True, id="sqlalchemy-pool-timeout"),
        pytest.param(lambda: _dbapi(IntegrityError), False, id="sqlalchemy-integrity"),
        pytest.param(lambda: _dbapi(DataError), False, id="sqlalchemy-data"),
        pytest.param(lambda: _dbapi(ProgrammingError), True, id="sqlalchemy-programming-unknown"),
        pytest.param(lambda: ConnectionRefusedError(111, "refused"), True, id="connection-refused"),
        pytest.param(lambda: TimeoutError("timed out"), True, id="timeout"),
        pytest.param(lambda: urllib.error.URLError(ConnectionRefusedError(111, "refused")), True, id="url-error"),
    ],
)
def test_third_party_exceptions_are_judged_by_type_and_error_code(
    make: Callable[[], BaseException], retryable: bool
) -> None:
    # GIVEN an exception raised by a library the pipeline calls WHEN judged THEN the verdict is the expected one
    assert is_retryable(make()) is retryable


class _NobodyClassifiedError(Exception):
    pass


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(_NobodyClassifiedError("?"), id="unknown-class"),
        pytest.param(ValueError("bad value"), id="value-error"),
        pytest.param(KeyError("k"), id="key-error"),
        pytest.param(PipelineError("unclassified"), id="bare-pipeline-error"),
        pytest.param(KinesisPutError("base", **_codes("InternalFailure")), id="bare-kinesis-put-error"),
    ],
)
def test_an_unknown_fault_is_retryable(error: BaseException) -> None:
    # GIVEN an exception nobody declared permanent WHEN judged THEN it is retried (and later dead-lettered)
    assert is_retryable(error) is True


def test_a_pipeline_error_decides_by_its_class_whatever_its_builtin_base() -> None:
    # GIVEN a permanent error whose builtin base is one is_retryable calls transient
    class _RefusedError(PermanentError, ConnectionError):
        pass

    # WHEN judged THEN the pipeline's declaration wins
    assert is_retryable(_RefusedError("no")) is False


@pytest.mark.parametrize(
    ("original", "redacted_as"),
    [
        pytest.param(TimeoutError("GET http://u:pw@mlflow:5000 timed out"), TransientMlflowRequestError, id="timeout"),
        pytest.param(
            ParamValidationError(report="bad URL http://u:pw@mlflow:5000"), PermanentMlflowRequestError, id="invalid"
        ),
    ],
)
def test_a_redacted_mlflow_error_keeps_the_verdict_of_the_error_it_replaces(
    original: Exception, redacted_as: type[MlflowRequestError]
) -> None:
    # GIVEN an MLflow failure whose text quotes credentials WHEN redacted THEN the replacement keeps its verdict
    with pytest.raises(MlflowRequestError) as raised, mlflow_errors_redacted():
        raise original
    assert type(raised.value) is redacted_as
    assert is_retryable(raised.value) is is_retryable(original)
    assert "pw" not in str(raised.value)
