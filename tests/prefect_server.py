"""One Prefect API server for a whole test run, shared by its parallel workers.

Prefect's test harness starts a server per process: with four workers that was four to six servers, each
about 7 s of CPU to start on two cores, plus the server modules imported into every worker. Here the
first worker that needs a server starts the same one the harness would (ephemeral, no UI, a fresh SQLite
database), the others join it, and the last one to leave stops it. A lock file under the run's temporary
folder orders them; a worker that needs a server after it stopped starts another.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.local_servers import free_port, wait_until_healthy

START_TIMEOUT_SECONDS = 90
STOP_TIMEOUT_SECONDS = 10
_LOCK_FILE = "prefect-server.lock"
_STATE_FILE = "prefect-server.json"
# What Prefect's harness sets for its server: the API only, in ephemeral mode.
_SERVER_ENV = {"PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1", "PREFECT__SERVER_FINAL": "1"}


@dataclass
class _State:
    pid: int
    api_url: str
    users: list[int] = field(default_factory=list)  # the workers' process ids


@contextmanager
def shared_prefect_server(folder: Path) -> Iterator[str]:
    """The run's server API URL for this process, started if none is running. Users whose process has
    ended without leaving (a crashed worker) are dropped on the way."""
    user = os.getpid()
    folder.mkdir(parents=True, exist_ok=True)
    with _locked(folder):
        state = _read(folder)
        if state is None or not _running(state.pid):
            state = _start(folder)
        state.users = sorted({*state.users, user})
        _write(folder, state)
    try:
        yield state.api_url
    finally:
        with _locked(folder):
            current = _read(folder)
            if current is not None:
                current.users = [u for u in current.users if u != user and Path(f"/proc/{u}").exists()]
                if current.users:
                    _write(folder, current)
                else:
                    _stop(current.pid)
                    (folder / _STATE_FILE).unlink()


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    with (folder / _LOCK_FILE).open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _read(folder: Path) -> _State | None:
    path = folder / _STATE_FILE
    return _State(**json.loads(path.read_text())) if path.exists() else None


def _write(folder: Path, state: _State) -> None:
    (folder / _STATE_FILE).write_text(json.dumps(state.__dict__))


def _start(folder: Path) -> _State:
    port = free_port()
    database = folder / f"prefect-{port}.db"
    log_path = folder / f"prefect-server-{port}.log"
    command = [
        *(sys.executable, "-m", "uvicorn", "--factory", "prefect.server.api.server:create_app"),
        *("--host", "127.0.0.1", "--port", str(port), "--log-level", "error", "--lifespan", "on"),
    ]
    env = {
        **os.environ,
        **_SERVER_ENV,
        "PREFECT_HOME": str(folder / "prefect-home"),
        "PREFECT_SERVER_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{database}",
    }
    env.pop("PREFECT_API_URL", None)
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    # Reaped as soon as it ends, whichever worker stops it.
    threading.Thread(target=process.wait, daemon=True, name="prefect-server-reaper").start()
    api_url = f"http://127.0.0.1:{port}/api"
    try:
        wait_until_healthy(
            process,
            f"{api_url}/health",
            timeout=START_TIMEOUT_SECONDS,
            name="the shared Prefect server",
            log_path=log_path,
        )
    except RuntimeError:
        _stop(process.pid)
        raise
    return _State(pid=process.pid, api_url=api_url)


def _running(pid: int) -> bool:
    """Our server, alive, and not a zombie waiting to be reaped by a worker that has not noticed yet."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z" and b"prefect.server.api.server" in command


def _stop(pid: int) -> None:
    for sig, wait in ((signal.SIGTERM, STOP_TIMEOUT_SECONDS), (signal.SIGKILL, STOP_TIMEOUT_SECONDS)):
        if not _running(pid):
            return
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while _running(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
