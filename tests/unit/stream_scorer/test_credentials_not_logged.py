"""A batch that fails because the registry or the database is unreachable logs the fault, never the password
of the URL that names them. Closed local ports: the connections are refused at once, no server is needed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.exc import DBAPIError

from churn_common.database import engine_url, get_engine
from stream_scorer.handler import handle
from stream_scorer.model import ModelCache
from stream_scorer.model_registry import RegistryUnavailableError
from tests.conftest import free_port
from tests.factories import customer_record, encoded, fixed_incarnation, kinesis_event

SECRET = "secret"


def _fault_lines(output: str) -> list[dict[str, object]]:
    return [line for line in map(json.loads, output.splitlines()) if "fault" in line]


def test_an_unreachable_registry_is_logged_without_its_password(
    env, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a tracking URI with credentials, where nothing listens
    port = free_port()
    env(MLFLOW_TRACKING_URI=f"http://user:{SECRET}@127.0.0.1:{port}")
    models = ModelCache(name="XGBoostChurnModel", alias="staging", refresh_seconds=60)
    engine = get_engine(f"sqlite:///{tmp_path / 'churn.db'}")
    # WHEN a batch is handled THEN it fails as a registry fault (Lambda retries it)
    with pytest.raises(RegistryUnavailableError) as raised:
        handle(
            kinesis_event(encoded([customer_record()])), models=models, engine=engine, incarnations=fixed_incarnation
        )
    # AND neither the log line nor the error the runtime reports holds the password; both name the server
    (line,) = _fault_lines(capsys.readouterr().out)
    assert line["fault"] == "registry"
    assert SECRET not in json.dumps(line)
    assert f"http://***@127.0.0.1:{port}" in str(line["error"])
    assert SECRET not in str(raised.value)


def test_an_unreachable_database_with_an_at_sign_in_its_password_is_logged_without_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN a DATABASE_URL whose (unencoded) password holds "@", where nothing listens
    url = f"postgresql+psycopg://app:hunter@2{SECRET}@127.0.0.1:{free_port()}/churn"
    # WHEN the engine is opened (cold start) THEN the refusal names the host, not the end of the password
    with pytest.raises(DBAPIError) as raised:
        get_engine(url)
    assert SECRET not in str(raised.value)
    assert "127.0.0.1" in str(raised.value)
    # AND WHEN a warm container's batch meets the database down (a poison record: no model needed)
    event = kinesis_event([b"x"], aggregate=False)
    event["Records"][0]["kinesis"]["data"] = "not base64"
    engine = create_engine(engine_url(url))
    with pytest.raises(DBAPIError):
        handle(event, models=None, engine=engine, incarnations=fixed_incarnation)  # type: ignore[arg-type]
    # THEN the database fault is logged without the password
    (line,) = _fault_lines(capsys.readouterr().out)
    assert line["fault"] == "database"
    assert SECRET not in json.dumps(line)
