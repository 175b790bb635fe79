"""The embedded local stack: moto server on 127.0.0.1, the local Lambda service, and optionally the
Prefect server with the monitor deployment served on its schedule.

``python -m infra.local.stack`` runs it in the foreground until Ctrl-C (``make stack``).
"""

from __future__ import annotations

import faulthandler
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from contextlib import AbstractContextManager, suppress
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from churn_common.aws import client, forget_clients
from churn_common.aws import session as aws_session
from churn_common.settings import Settings, get_settings
from infra.local.aws_call_log import AwsCallLog
from infra.local.child_processes import ChildRegistry, end_leftovers
from infra.local.database_secret import store_database_secret
from infra.local.lambda_service import (
    CheckpointStore,
    Handler,
    KinesisMappingConfig,
    LambdaService,
    SqsEventSource,
    shard_pollers,
)
from infra.local.policy_documents import (
    DEPLOYED_ROLES,
    Policy,
    deployed_policy,
    for_emulator,
    local_references,
)
from infra.local.prefect_runs import on_stack_server, prefect_api_url, release_stale_monitor_runs
from infra.local.principals import (
    MONITOR,
    OPERATOR,
    AccessKey,
    create_principals,
    enforce_iam,
    sign_as_principals,
    write_credentials_file,
)
from infra.local.resources import StackResources, event_source_mappings, provision

log = logging.getLogger(__name__)

LOCAL_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"}
TELEMETRY_OFF = {
    "DO_NOT_TRACK": "1",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
}
# The Prefect server serves its UI (shipped in the prefect wheel) at its root: the deployment and its runs.
PREFECT_UI = {"PREFECT_UI_ENABLED": "true"}
PREFECT_START_TIMEOUT_SECONDS = 90
PREFECT_DRAIN_TIMEOUT_SECONDS = 15
LAMBDA_STOP_TIMEOUT_SECONDS = 120
LOGGED_PACKAGES = ("infra", "producer", "stream_scorer")
REPO_ROOT = Path(__file__).resolve().parents[2]
CALL_LOG_FILE = "aws-calls.json"
CREDENTIALS_FILE = "aws-credentials"
# Set while the stack runs as the deployed roles, restored at its stop.
ROLE_ENVIRONMENT = ("DATABASE_SECRET_ARN", "AWS_SESSION_TOKEN")

HandlerWrapper = Callable[[str, Handler], Handler]
CheckpointStoreFactory = Callable[[Path], CheckpointStore]
PolicyEdit = Callable[[dict[str, Policy]], dict[str, Policy]]


def unwrapped(_function_name: str, handler: Handler) -> Handler:
    return handler


def unedited(policies: dict[str, Policy]) -> dict[str, Policy]:
    return policies


def checkpoints_path(settings: Settings) -> Path:
    return settings.local_state_dir / "lambda" / "checkpoints.json"


def credentials_path(settings: Settings) -> Path:
    return settings.local_state_dir / CREDENTIALS_FILE


def local_environment(settings: Settings) -> dict[str, str]:
    """Environment every local process shares: endpoints, fake credentials, telemetry off."""
    state = settings.local_state_dir.resolve()
    return {
        **LOCAL_CREDENTIALS,
        **TELEMETRY_OFF,
        **PREFECT_UI,
        "AWS_DEFAULT_REGION": settings.aws_region,
        "AWS_ENDPOINT_URL": emulator_url(settings),
        "LOCAL_STATE_DIR": str(state),
        "PREFECT_HOME": str(state / "prefect"),
        "PREFECT_API_URL": prefect_api_url(settings),
    }


def _wait_http(url: str, *, timeout: float, process: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process for {url} exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f} s")


def _require_free_port(port: int, setting: str, user: str) -> None:
    """Raise a clear error, naming the setting that moves it, when 127.0.0.1:``port`` cannot be bound.

    SO_REUSEADDR as servers set it: a port left in TIME_WAIT by a stack that just stopped is free."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            raise RuntimeError(
                f"port {port} on 127.0.0.1, for {user}, is in use ({exc.strerror}): "
                f"stop what listens there, or set {setting} to a free port"
            ) from None


def emulator_url(settings: Settings) -> str:
    return f"http://127.0.0.1:{settings.local_aws_port}"


def _reset_emulator(settings: Settings) -> None:
    request = urllib.request.Request(f"{emulator_url(settings)}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, timeout=10):
        pass


def _drain_prefect_workers() -> None:
    """Flow runs in this process send their logs and events in the background. Sent before the server
    stops, none is left retrying against a dead server, which would hang whoever drains them later
    (e.g. ``prefect_test_harness`` in the same process)."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=PREFECT_DRAIN_TIMEOUT_SECONDS)
    EventsWorker.drain_all(timeout=PREFECT_DRAIN_TIMEOUT_SECONDS)


class LocalStack(AbstractContextManager["LocalStack"]):
    """Starts every local part in order and stops them in reverse; usable as a context manager."""

    def __init__(
        self,
        *,
        with_prefect: bool = True,
        log_dir: Path | None = None,
        wrap_handler: HandlerWrapper = unwrapped,
        serve_monitor: bool = True,
        checkpoint_store: CheckpointStoreFactory = CheckpointStore,
        edit_policies: PolicyEdit = unedited,
    ) -> None:
        """``wrap_handler(function_name, handler)`` returns what the Lambda service invokes instead of each
        handler: benchmarks observe invocations through it (the handlers themselves stay the real ones).
        ``serve_monitor=False`` starts the Prefect server without the scheduled monitor deployment, for
        callers that run the monitor flow themselves; ``checkpoint_store`` opens the shard checkpoints (a
        chaos run hands in one that dies between a commit and its checkpoint); ``edit_policies`` changes the rendered
        policies before the principals get them (a test removes a statement and sees the call it allowed fail)."""
        self._with_prefect = with_prefect
        self._wrap_handler = wrap_handler
        self._serve_monitor = serve_monitor
        self._checkpoint_store = checkpoint_store
        self._edit_policies = edit_policies
        self._moto = None
        self._lambda: LambdaService | None = None
        self._processes: list[subprocess.Popen[bytes]] = []
        self._children: ChildRegistry | None = None
        self._log_dir = log_dir
        self.resources: StackResources | None = None
        self._started_at = datetime.now(tz=UTC)
        self._saved_environment: dict[str, str | None] = {}
        self._keys: dict[str, AccessKey] = {}
        self._call_log: AwsCallLog | None = None
        self._policies: dict[str, Policy] = {}
        self._enforcing = False

    @property
    def lambda_service(self) -> LambdaService:
        assert self._lambda is not None, "stack not started"
        return self._lambda

    def start(self) -> LocalStack:
        from moto.server import ThreadedMotoServer

        self._started_at = datetime.now(tz=UTC)
        settings = get_settings()
        # A stack killed hard may have left servers holding the ports: what it recorded as its own is ended.
        end_leftovers(settings.local_state_dir)
        # Before anything starts: on a busy port the emulator only logs "Port ... is in use" and the wait
        # for it hangs, and the Prefect server would fail only after its start-up timeout.
        _require_free_port(settings.local_aws_port, "LOCAL_AWS_PORT", "the AWS emulator")
        if self._with_prefect:
            _require_free_port(settings.local_prefect_port, "LOCAL_PREFECT_PORT", "the Prefect server")
        environment = local_environment(settings)
        self._saved_environment = {key: os.environ.get(key) for key in (*environment, *ROLE_ENVIRONMENT)}
        os.environ.update(environment)
        get_settings.cache_clear()
        forget_clients()
        settings = get_settings()
        self._log_dir = self._log_dir or settings.local_state_dir / "logs"
        self._log_dir.mkdir(parents=True, exist_ok=True)

        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._moto = ThreadedMotoServer(ip_address="127.0.0.1", port=settings.local_aws_port, verbose=False)
        self._moto.start()
        _wait_http(f"http://127.0.0.1:{settings.local_aws_port}/moto-api/", timeout=10)
        # Every run starts from an empty emulator and no checkpoints, as a new process does: the emulator keeps
        # its state per process, and checkpoints of an earlier run's stream would skip records of this one.
        _reset_emulator(settings)
        checkpoints_path(settings).unlink(missing_ok=True)
        self.resources = provision(settings)
        if settings.local_iam_enforced:
            self._run_as_deployed_roles(settings, self.resources)
        self._start_lambda_service(settings, self.resources)
        if self._with_prefect:
            self._start_prefect(settings)
        return self

    @property
    def call_log_path(self) -> Path:
        return get_settings().local_state_dir / CALL_LOG_FILE

    def _run_as_deployed_roles(self, settings: Settings, resources: StackResources) -> None:
        """One emulator principal per component holding the policy Terraform grants it, this process's session
        signing as whichever one a thread acts as, and the emulator enforcing IAM from here on."""
        secret_arn = store_database_secret(settings)
        if secret_arn:
            os.environ["DATABASE_SECRET_ARN"] = secret_arn
        references = local_references(resources, database_secret_arn=secret_arn, region=settings.aws_region)
        self._policies = self._edit_policies({name: deployed_policy(name, references) for name in DEPLOYED_ROLES})
        emulated = {name: for_emulator(policy) for name, policy in self._policies.items()}
        self._keys = create_principals(client("iam"), emulated)
        forget_clients()
        get_settings.cache_clear()
        sign_as_principals(aws_session(), self._keys)
        self._call_log = AwsCallLog()
        self._call_log.attach(aws_session())
        # Clients the harness creates itself (boto3 directly) sign as the operator; other shells read its key.
        os.environ.pop("AWS_SESSION_TOKEN", None)  # a user's key signs without one
        os.environ.update(self._keys[OPERATOR].environment())
        write_credentials_file(credentials_path(settings), self._keys)
        enforce_iam(emulator_url(settings))
        self._enforcing = True

    def principal_environment(self, principal: str) -> dict[str, str]:
        """The credentials a process running as ``principal`` gets (empty when IAM is not enforced)."""
        return self._keys[principal].environment() if principal in self._keys else {}

    def restart_lambda_service(self) -> None:
        """Stop the Lambda service (every poller thread ended) and start a fresh one, which resumes from the
        persisted checkpoints: what happens when its process is killed and started again."""
        assert self.resources is not None, "stack not started"
        if self._lambda is not None and not self._lambda.stop(LAMBDA_STOP_TIMEOUT_SECONDS):
            raise RuntimeError(f"the Lambda service did not stop within {LAMBDA_STOP_TIMEOUT_SECONDS} s")
        self._start_lambda_service(get_settings(), self.resources)

    def _start_lambda_service(self, settings: Settings, resources: StackResources) -> None:
        from producer import lambda_handler as producer_handler
        from stream_scorer import lambda_handler as scorer_handler

        mappings = event_source_mappings()
        service = LambdaService()
        service.add(
            SqsEventSource(
                name="producer",
                queue_url=resources.file_drops_queue_url,
                queue_arn=resources.file_drops_queue_arn,
                handler=self._wrap_handler("producer", producer_handler),
                batch_size=mappings["producer"]["batch_size"],
                timeout_seconds=settings.local_producer_timeout_seconds
                or mappings["producer"]["function_timeout_seconds"],
            )
        )
        scorer_pollers = shard_pollers(
            name="stream_scorer",
            stream_name=resources.stream_name,
            stream_arn=resources.stream_arn,
            handler=self._wrap_handler("stream_scorer", scorer_handler),
            config=KinesisMappingConfig.from_mapping(
                mappings["stream_scorer"], on_failure_queue_url=resources.scorer_dlq_url
            ),
            checkpoints=self._checkpoint_store(checkpoints_path(settings)),
        )
        service.add(*scorer_pollers)
        service.start()
        self._lambda = service

    def _spawn(self, name: str, args: list[str], *, principal: str = OPERATOR) -> subprocess.Popen[bytes]:
        assert self._log_dir is not None
        log_file = (self._log_dir / f"{name}.log").open("ab")
        # Under a supervisor that ends the child's whole process group when this process dies, even by SIGKILL.
        self._children = self._children or ChildRegistry(get_settings().local_state_dir)
        process = self._children.spawn(
            args, stdout=log_file, cwd=REPO_ROOT, env={**os.environ, **self.principal_environment(principal)}
        )
        self._processes.append(process)
        return process

    def _start_prefect(self, settings: Settings) -> None:
        prefect = str(Path(sys.executable).with_name("prefect"))
        server = self._spawn(
            "prefect-server",
            [prefect, "server", "start", "--host", "127.0.0.1", "--port", str(settings.local_prefect_port)],
        )
        _wait_http(
            f"http://127.0.0.1:{settings.local_prefect_port}/api/health",
            timeout=PREFECT_START_TIMEOUT_SECONDS,
            process=server,
        )
        with on_stack_server(settings):
            released = release_stale_monitor_runs(self._started_at)
        if released:
            log.warning("%d monitor run(s) left unfinished by an earlier stack marked crashed", released)
        if self._serve_monitor:
            self._spawn("batch-monitor", [sys.executable, "-m", "batch_monitor.serve"], principal=MONITOR)

    def stop(self) -> None:
        if self._lambda is not None:
            self._lambda.stop()
        if self._with_prefect:
            _drain_prefect_workers()
        # Each supervisor passes the SIGTERM on to its group once (a second one makes uvicorn skip its graceful
        # shutdown), and kills what is left of the group after its grace; the SIGKILL here is the last resort.
        for process in reversed(self._processes):
            if process.poll() is None:
                os.kill(process.pid, signal.SIGTERM)
        for process in self._processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        if self._children is not None:
            self._children.forget()
        if self._call_log is not None:
            self._call_log.write(self.call_log_path, policies=self._policies)
        if self._enforcing:
            # The emulator's settings are process-wide: an emulator started later in this process starts open.
            enforce_iam(emulator_url(get_settings()), enabled=False)
            credentials_path(get_settings()).unlink(missing_ok=True)
            self._enforcing = False
        if self._moto is not None:
            self._moto.stop()
        for key, value in self._saved_environment.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        get_settings.cache_clear()
        forget_clients()

    def __enter__(self) -> LocalStack:
        """A start that fails half-way stops what it started: pollers left running would go on polling an
        emulator that is gone, for as long as the process lives."""
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


# `kill -USR1 <pid>` prints every thread's stack to stderr: a stop that does not end can be read, not guessed.
STACK_DUMP_SIGNAL = signal.SIGUSR1


def main() -> None:
    faulthandler.register(STACK_DUMP_SIGNAL, all_threads=True)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    for name in LOGGED_PACKAGES:
        logging.getLogger(name).setLevel(logging.INFO)
    with LocalStack() as stack:
        settings = get_settings()
        print(f"AWS emulator on {settings.aws_endpoint_url}, Prefect on port {settings.local_prefect_port}")
        print(f"bucket s3://{stack.resources.bucket if stack.resources else '?'}; Ctrl-C to stop")
        with suppress(KeyboardInterrupt):
            while True:  # until Ctrl-C: a stack dump's signal also ends a pause
                signal.pause()


if __name__ == "__main__":
    main()
