"""The scorer's log and metric lines (Powertools Logger and Metrics), as a warm container writes them."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from stream_scorer.handler import log, metrics_sink
from stream_scorer.telemetry import BatchMetrics, fields, publish

SECRET = "secret"


def batch(**overrides: Any) -> BatchMetrics:
    values: dict[str, Any] = {
        "records_in": 20,
        "scored": 18,
        "duplicates": 0,
        "rejected": 2,
        "batch_latency_ms": 12.5,
        "oldest_record_age_s": 1.25,
        "model_name": "XGBoostChurnModel",
        "model_version": "3",
    }
    return BatchMetrics(**{**values, **overrides})


def lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    return [json.loads(text) for text in capsys.readouterr().out.splitlines()]


def test_each_invocation_writes_one_emf_line_with_its_own_values_only(capsys: pytest.CaptureFixture[str]) -> None:
    at = datetime.now(tz=UTC)
    # WHEN two invocations of one process publish their metrics, the second without a record age
    publish(batch(), at=at, sink=metrics_sink)
    publish(batch(scored=0, duplicates=18, oldest_record_age_s=None), at=at, sink=metrics_sink)
    first, second = lines(capsys)
    # THEN each is one EMF document: namespace, service dimension, units, model properties, timestamp
    (directive,) = first["_aws"]["CloudWatchMetrics"]
    assert (directive["Namespace"], directive["Dimensions"]) == ("ChurnPipeline", [["service"]])
    assert {m["Name"]: m["Unit"] for m in directive["Metrics"]} == {
        "records_in": "Count",
        "scored": "Count",
        "duplicates": "Count",
        "rejected": "Count",
        "batch_latency_ms": "Milliseconds",
        "oldest_record_age_s": "Seconds",
    }
    assert abs(first["_aws"]["Timestamp"] - at.timestamp() * 1000) <= 1  # epoch milliseconds, rounded
    assert (first["service"], first["model_name"], first["model_version"]) == (
        "stream_scorer",
        "XGBoostChurnModel",
        "3",
    )
    assert (first["scored"], first["duplicates"], first["oldest_record_age_s"]) == ([18.0], [0.0], [1.25])
    # AND nothing of the first is left in the second: one value per metric, no stale age
    assert (second["scored"], second["duplicates"], second["records_in"]) == ([0.0], [18.0], [20.0])
    assert "oldest_record_age_s" not in second
    assert "oldest_record_age_s" not in {m["Name"] for m in second["_aws"]["CloudWatchMetrics"][0]["Metrics"]}


def test_log_lines_are_json_on_the_current_stdout_and_redacted_whole(capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN an error whose text, extra keys and traceback quote a URL with a password
    try:
        raise ConnectionError(f"cannot reach http://user:{SECRET}@registry:5000")
    except ConnectionError as exc:
        log.error("batch failed", extra=fields(fault="registry", error=str(exc)), exc_info=True)
    # THEN one JSON line on the stdout of this moment (captured here), without the password anywhere
    output = capsys.readouterr().out
    (line,) = [json.loads(text) for text in output.splitlines()]
    assert SECRET not in output
    assert (line["level"], line["service"], line["message"], line["fault"]) == (
        "ERROR",
        "stream_scorer",
        "batch failed",
        "registry",
    )
    assert line["error"] == "cannot reach http://***@registry:5000"
    assert "http://***@registry:5000" in line["exception"]
