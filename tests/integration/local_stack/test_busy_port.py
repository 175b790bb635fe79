"""A local stack whose port is taken fails at once, naming the port and the setting that moves it."""

from __future__ import annotations

import os
import socket
import time

import pytest

from infra.local.stack import LocalStack
from tests.conftest import free_port

pytestmark = pytest.mark.integration


def test_a_busy_emulator_port_fails_fast_and_leaves_the_environment_as_it_was(env, tmp_path) -> None:
    # GIVEN something listening on the emulator's port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env(LOCAL_STATE_DIR=str(tmp_path), LOCAL_AWS_PORT=str(port))
        before = {key: os.environ.get(key) for key in ("AWS_ENDPOINT_URL", "PREFECT_API_URL", "LOCAL_STATE_DIR")}
        started = time.monotonic()
        # WHEN the stack starts THEN it refuses within a moment, naming the port and LOCAL_AWS_PORT
        with pytest.raises(RuntimeError, match=rf"port {port} .*LOCAL_AWS_PORT"):
            LocalStack(with_prefect=False).start()
        assert time.monotonic() - started < 2
    # AND nothing was started nor changed: the environment is as it was
    assert {key: os.environ.get(key) for key in before} == before
    assert not (tmp_path / "logs").exists()


def test_a_busy_prefect_port_is_named_with_its_setting(env, tmp_path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env(LOCAL_STATE_DIR=str(tmp_path), LOCAL_AWS_PORT=str(free_port()), LOCAL_PREFECT_PORT=str(port))
        with pytest.raises(RuntimeError, match=rf"port {port} .*Prefect.*LOCAL_PREFECT_PORT"):
            LocalStack(with_prefect=True).start()
