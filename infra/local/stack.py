"""The embedded local stack: moto server on 127.0.0.1, the local Lambda service, and optionally the
Prefect server with the monitor deployment served on its schedule.

``python -m infra.local.stack`` runs it in the foreground until Ctrl-C (``make stack``).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
import urllib.request
from contextlib import AbstractContextManager, suppress
from pathlib import Path
from types import TracebackType

from churn_common.aws import client
from churn_common.settings import Settings, get_settings
from infra.local.lambda_service import (
    CheckpointStore,
    KinesisMappingConfig,
    LambdaService,
    SqsEventSource,
)
from infra.local.resources import StackResources, event_source_mappings, provision

log = logging.getLogger(__name__)

LOCAL_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"}
TELEMETRY_OFF = {
    "DO_NOT_TRACK": "1",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_UI_ENABLED": "false",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
}
PREFECT_START_TIMEOUT_SECONDS = 90
LOGGED_PACKAGES = ("infra", "producer", "stream_scorer")
REPO_ROOT = Path(__file__).resolve().parents[2]


def local_environment(settings: Settings) -> dict[str, str]:
    """Environment every local process shares: endpoints, fake credentials, telemetry off."""
    state = settings.local_state_dir.resolve()
    return {
        **LOCAL_CREDENTIALS,
        **TELEMETRY_OFF,
        "AWS_DEFAULT_REGION": settings.aws_region,
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{settings.local_aws_port}",
        "LOCAL_STATE_DIR": str(state),
        "PREFECT_HOME": str(state / "prefect"),
        "PREFECT_API_URL": f"http://127.0.0.1:{settings.local_prefect_port}/api",
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


class LocalStack(AbstractContextManager["LocalStack"]):
    """Starts every local part in order and stops them in reverse; usable as a context manager."""

    def __init__(self, *, with_prefect: bool = True, log_dir: Path | None = None) -> None:
        self._with_prefect = with_prefect
        self._moto = None
        self._lambda: LambdaService | None = None
        self._processes: list[subprocess.Popen[bytes]] = []
        self._log_dir = log_dir
        self.resources: StackResources | None = None
        self._saved_environment: dict[str, str | None] = {}

    @property
    def lambda_service(self) -> LambdaService:
        assert self._lambda is not None, "stack not started"
        return self._lambda

    def start(self) -> LocalStack:
        from moto.server import ThreadedMotoServer

        settings = get_settings()
        environment = local_environment(settings)
        self._saved_environment = {key: os.environ.get(key) for key in environment}
        os.environ.update(environment)
        get_settings.cache_clear()
        client.cache_clear()
        settings = get_settings()
        self._log_dir = self._log_dir or settings.local_state_dir / "logs"
        self._log_dir.mkdir(parents=True, exist_ok=True)

        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._moto = ThreadedMotoServer(ip_address="127.0.0.1", port=settings.local_aws_port, verbose=False)
        self._moto.start()
        _wait_http(f"http://127.0.0.1:{settings.local_aws_port}/moto-api/", timeout=10)
        self.resources = provision(settings)
        self._start_lambda_service(settings, self.resources)
        if self._with_prefect:
            self._start_prefect(settings)
        return self

    def _start_lambda_service(self, settings: Settings, resources: StackResources) -> None:
        from producer.handler import lambda_handler as producer_handler
        from stream_scorer.handler import lambda_handler as scorer_handler

        mappings = event_source_mappings()
        service = LambdaService()
        service.add_sqs(
            SqsEventSource(
                name="producer",
                queue_url=resources.file_drops_queue_url,
                queue_arn=resources.file_drops_queue_arn,
                handler=producer_handler,
                batch_size=mappings["producer"]["batch_size"],
            )
        )
        service.add_kinesis(
            name="stream_scorer",
            stream_name=resources.stream_name,
            stream_arn=resources.stream_arn,
            handler=scorer_handler,
            config=KinesisMappingConfig.from_mapping(
                mappings["stream_scorer"], on_failure_queue_url=resources.scorer_dlq_url
            ),
            checkpoints=CheckpointStore(settings.local_state_dir / "lambda" / "checkpoints.json"),
        )
        service.start()
        self._lambda = service

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        assert self._log_dir is not None
        log_file = (self._log_dir / f"{name}.log").open("ab")
        process = subprocess.Popen(
            args,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=os.environ.copy(),
            cwd=REPO_ROOT,
            start_new_session=True,
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
        self._spawn("batch-monitor", [sys.executable, "-m", "batch_monitor.serve"])

    def stop(self) -> None:
        if self._lambda is not None:
            self._lambda.stop()
        for process in reversed(self._processes):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self._processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        if self._moto is not None:
            self._moto.stop()
        for key, value in self._saved_environment.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        get_settings.cache_clear()
        client.cache_clear()

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    for name in LOGGED_PACKAGES:
        logging.getLogger(name).setLevel(logging.INFO)
    with LocalStack() as stack:
        settings = get_settings()
        print(f"AWS emulator on {settings.aws_endpoint_url}, Prefect on port {settings.local_prefect_port}")
        print(f"bucket s3://{stack.resources.bucket if stack.resources else '?'}; Ctrl-C to stop")
        with suppress(KeyboardInterrupt):
            signal.pause()


if __name__ == "__main__":
    main()
