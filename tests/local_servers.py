"""Helper processes that tests and benchmarks start on 127.0.0.1: free ports, servers that are ready before
they are used (an MLflow tracking server among them)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# MLflow 3.17 starts several job-runner processes by default (about 250 MB each); none is needed here.
MLFLOW_SERVER_SETTINGS = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "MLFLOW_DISABLE_TELEMETRY": "true"}
MLFLOW_START_TIMEOUT_SECONDS = 180


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def mlflow_server(
    *, backend_store_uri: str, artifacts: Path | str, log_path: Path, env: dict[str, str] | None = None
) -> Iterator[str]:
    """A real ``mlflow server`` on a free port, healthy before the URL is yielded, stopped afterwards;
    ``artifacts`` is a folder or an ``s3://`` URI the server proxies artifacts to."""
    port = free_port()
    command = [
        str(Path(sys.executable).with_name("mlflow")),
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--backend-store-uri",
        backend_store_uri,
        "--artifacts-destination",
        str(artifacts),
        "--workers",
        "1",
    ]
    with served(
        command,
        log_path=log_path,
        env={**MLFLOW_SERVER_SETTINGS, **(env or {})},
        port=port,
        health_path="/health",
        timeout=MLFLOW_START_TIMEOUT_SECONDS,
        name="mlflow server",
    ) as url:
        yield url


@contextmanager
def served(
    command: list[str],
    *,
    port: int,
    health_path: str,
    log_path: Path,
    timeout: float,
    name: str,
    env: dict[str, str] | None = None,
) -> Iterator[str]:
    """Runs ``command`` (a server on ``port``) in its own process group, yields its URL once ``health_path``
    answers, and stops the whole group afterwards; a server that dies or stays silent fails with its log."""
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env={**os.environ, **(env or {})}
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(process, f"{url}{health_path}", timeout=timeout, name=name, log_path=log_path)
        yield url
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


def wait_until_healthy(
    process: subprocess.Popen[bytes], health_url: str, *, timeout: float, name: str, log_path: Path
) -> None:
    """Returns once ``health_url`` answers; a server that dies or stays silent fails with its log."""
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{name} did not start:\n{log_path.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(health_url, timeout=2):
                return
        except OSError:
            time.sleep(0.3)
