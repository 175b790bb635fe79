"""Credentials in URLs never reach a log line: :func:`churn_common.redaction.redact` and the logging filter,
and the database URL whose password holds an unencoded ``@``."""

from __future__ import annotations

import json
import logging

import pytest

from churn_common.database import engine_url
from churn_common.redaction import RedactingFilter, redact


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("http://user:secret@host:5000/api", "http://***@host:5000/api", id="user-and-password"),
        pytest.param("https://:secret@host", "https://***@host", id="password-only"),
        pytest.param("ssh://git@host/repo", "ssh://***@host/repo", id="user-only"),
        pytest.param(
            "postgresql+psycopg://app:p@ss@db:5432/x", "postgresql+psycopg://***@db:5432/x", id="at-in-password"
        ),
        pytest.param("postgresql://app:a:b/c@d@db/x", "postgresql://***@db/x", id="colon-slash-at-in-password"),
        pytest.param("postgresql://app:p%40ss@db/x", "postgresql://***@db/x", id="percent-encoded"),
        pytest.param(
            "MLflow server http://u:secret@10.0.0.5:5000 unreachable: <urlopen error [Errno 111]>",
            "MLflow server http://***@10.0.0.5:5000 unreachable: <urlopen error [Errno 111]>",
            id="inside-an-error-text",
        ),
        pytest.param("host 'http://u:secret@h'", "host 'http://***@h'", id="quoted"),
    ],
)
def test_the_userinfo_of_a_url_is_masked(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "http://127.0.0.1:5000/api/2.0/mlflow?name=a&alias=b",
        "s3://churn-pipeline-data/data/input/f.csv",
        "sqlite:////tmp/state/churn.db",
        "write to ops@example.com about http://host/x",
        "no url at all",
        "",
    ],
)
def test_text_without_credentials_is_unchanged(text: str) -> None:
    assert redact(text) == text


def test_every_url_of_a_text_is_masked_and_nothing_else() -> None:
    text = "tried http://u:s1@a:1 and https://v:s2@b/x,postgresql://w:s3@c/db; then http://plain:80/"
    assert redact(text) == "tried http://***@a:1 and https://***@b/x,postgresql://***@c/db; then http://plain:80/"


def test_a_json_line_stays_json_and_redacting_twice_changes_nothing() -> None:
    line = json.dumps({"error": 'MLflow server http://u:se"cret@h unreachable', "source": "s3://b/k"})
    once = redact(line)
    assert json.loads(once) == {"error": "MLflow server http://***@h unreachable", "source": "s3://b/k"}
    assert redact(once) == once


def test_the_filter_masks_message_arguments_and_traceback(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("tests.redaction")
    logger.addFilter(RedactingFilter())
    try:
        raise ConnectionError("cannot reach postgresql://app:hunter@2secret@db:5432/x")
    except ConnectionError:
        with caplog.at_level(logging.INFO, logger="tests.redaction"):
            logger.exception("failed on %s", "http://user:secret@host")
    assert "secret" not in caplog.text
    assert "http://***@host" in caplog.text
    assert "postgresql://***@db:5432/x" in caplog.text


def test_producer_lines_are_redacted(caplog: pytest.LogCaptureFixture) -> None:
    from producer.handler import log

    with caplog.at_level(logging.INFO, logger="producer"):
        log.error(json.dumps({"message": "event failed", "error": "endpoint http://key:secret@s3.local refused"}))
    assert "secret" not in caplog.text
    assert "http://***@s3.local" in caplog.text


@pytest.mark.parametrize(
    ("url", "password", "host", "port"),
    [
        ("postgresql+psycopg://app:hunter@2secret@db:5432/x", "hunter@2secret", "db", 5432),
        ("postgresql+psycopg://app:p@ss:wo/rd@db:5432/x", "p@ss:wo/rd", "db", 5432),
        ("postgresql+psycopg://app:p%40ss@db/x", "p@ss", "db", None),
        ("postgresql+psycopg://app:plain@db:5432/x?options=a@b", "plain", "db", 5432),
    ],
)
def test_a_database_password_holding_an_at_sign_is_kept_whole(
    url: str, password: str, host: str, port: int | None
) -> None:
    parsed = engine_url(url)
    assert (parsed.username, parsed.password, parsed.host, parsed.port, parsed.database) == (
        "app",
        password,
        host,
        port,
        "x",
    )
