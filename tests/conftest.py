"""Fixtures shared by every test: the real emulator over HTTP, real Postgres, a real MLflow store.

Postgres tests are skipped with a message on a machine without a server, but fail under CI (``CI`` set),
where the server is part of the contract.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.local_servers import free_port

REPO_ROOT = Path(__file__).resolve().parent.parent
SESSION_STATE = Path(tempfile.mkdtemp(prefix="churn-tests-"))
POSTGRES_ADMIN_URL = os.environ.get("TEST_POSTGRES_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")

_TEST_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "LOCAL_STATE_DIR": str(SESSION_STATE),
    "MLFLOW_TRACKING_URI": f"sqlite:///{SESSION_STATE / 'mlflow' / 'mlflow.db'}",
    "DATABASE_URL": f"sqlite:///{SESSION_STATE / 'churn.db'}",
    "DO_NOT_TRACK": "1",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_HOME": str(SESSION_STATE / "prefect"),
    # Models the tests train use the fixed parameters; tests/integration/training searches on its own budget.
    "TUNING_TRIALS": "0",
    # Idle OpenMP threads sleep instead of spinning: with parallel workers on few cores, spinning threads took
    # the CPU from the thread with work (an XGBoost fit 0.2 s alone, up to 4 s beside a busy core).
    "OMP_WAIT_POLICY": "PASSIVE",
    # As deployed on AWS: tests of the workspace, its UI and the demo's views turn it on for themselves.
    "EVIDENTLY_WORKSPACE_ENABLED": "false",
    # Ports of the session's own: parallel workers each start local stacks, which refuse a busy port.
    "LOCAL_AWS_PORT": str(free_port()),
    "LOCAL_PREFECT_PORT": str(free_port()),
    "EVIDENTLY_UI_PORT": str(free_port()),
}
os.environ.update(_TEST_ENV)
logging.getLogger("werkzeug").setLevel(logging.WARNING)
os.environ.setdefault(
    "CHURN_TEST_DATA_DIR", os.environ.get("CHURN_DATA_DIR") or str((REPO_ROOT.parent / "shared" / "data").resolve())
)


# Slowest groups first: parallel workers then end together instead of one of them finishing an e2e run alone.
_GROUP_ORDER = {"e2e": 0, "integration": 1}
_LAST = len(_GROUP_ORDER)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def group(item: pytest.Item) -> int:
        groups = [_GROUP_ORDER[mark.name] for mark in item.iter_markers() if mark.name in _GROUP_ORDER]
        return min(groups, default=_LAST)

    items.sort(key=group)


def _clear_settings() -> None:
    from churn_common.aws import forget_clients
    from churn_common.settings import get_settings

    get_settings.cache_clear()
    forget_clients()


@pytest.fixture(scope="session", autouse=True)
def _session_state() -> Iterator[Path]:
    """The session's state folder (MLflow store, SQLite databases, Prefect home), removed when the session ends."""
    yield SESSION_STATE
    shutil.rmtree(SESSION_STATE, ignore_errors=True)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """Set environment variables for one test; settings are re-read afterwards and after the test."""

    def _set(**values: str) -> None:
        for key, value in values.items():
            monkeypatch.setenv(key, value)
        _clear_settings()

    yield _set
    monkeypatch.undo()
    _clear_settings()


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    os.environ["AWS_ENDPOINT_URL"] = url
    _clear_settings()
    yield url
    server.stop()
    os.environ.pop("AWS_ENDPOINT_URL", None)
    _clear_settings()


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Iterator[str]:
    """The run's one Prefect API server, shared by the parallel workers (tests/prefect_server.py), with this
    process's flows pointed at it; yields its API URL."""
    import prefect.settings

    from tests.prefect_server import shared_prefect_server

    run_folder = tmp_path_factory.getbasetemp()
    if worker_id != "master":  # each xdist worker's folder sits in the run's own
        run_folder = run_folder.parent
    with (
        shared_prefect_server(run_folder / "prefect-server") as api_url,
        prefect.settings.temporary_settings(updates={prefect.settings.PREFECT_API_URL: api_url}),
    ):
        yield api_url


@pytest.fixture
def aws(moto_endpoint: str):  # type: ignore[no-untyped-def]
    """A freshly reset emulator with every pipeline resource provisioned (as the local stack does)."""
    import urllib.request

    from infra.local.resources import provision

    urllib.request.urlopen(urllib.request.Request(f"{moto_endpoint}/moto-api/reset", method="POST")).read()
    _clear_settings()
    return provision()


def _postgres_available() -> bool:
    try:
        import psycopg

        with psycopg.connect(POSTGRES_ADMIN_URL, connect_timeout=2):
            return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def postgres_server() -> str:
    if not _postgres_available():
        if os.environ.get("CI"):
            pytest.fail(f"Postgres is required under CI but not reachable at {POSTGRES_ADMIN_URL}")
        pytest.skip(f"no Postgres server reachable at {POSTGRES_ADMIN_URL}")
    return POSTGRES_ADMIN_URL


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A database of its own for one test, dropped afterwards."""
    import psycopg

    name = f"churn_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = postgres_server.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    yield f"{base}/{name}"
    from churn_common.database import dispose_engine

    dispose_engine(f"{base}/{name}")
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'churn.db'}"


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> str:
    """Each test using this runs against SQLite (the local default) and real Postgres."""
    fixture = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    return str(request.getfixturevalue(fixture))


def real_data_dir() -> Path | None:
    path = Path(os.environ["CHURN_TEST_DATA_DIR"])
    return path if (path / "customer_churn_0.csv").exists() else None


def training_data_path() -> Path:
    """The real training file when the real data is at hand, else the bundled synthetic reference."""
    data_dir = real_data_dir()
    return data_dir / "customer_churn_0.csv" if data_dir else REPO_ROOT / "data" / "samples" / "reference.csv"


@pytest.fixture(scope="session")
def registered_model():  # type: ignore[no-untyped-def]
    """A model trained and registered once per session in the session's MLflow store, alias set."""
    from training.train import train_and_register

    _clear_settings()
    result = train_and_register(data_path=training_data_path())
    assert result.promoted, result.gate_failures
    return result
