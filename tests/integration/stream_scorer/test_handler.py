"""The scorer handler against a real MLflow registry and real databases (SQLite and Postgres)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, func, make_url, select
from sqlalchemy.exc import OperationalError

from churn_common.database import dispose_engine, get_engine, predictions, rejected_records
from churn_common.schema import FEATURE_COLUMNS, PERIOD_SECONDS
from stream_scorer.handler import handle
from stream_scorer.model import ModelCache
from stream_scorer.model_registry import RegistryUnavailableError
from tests.factories import FIXED_INCARNATION, customer_record, encoded, fixed_incarnation, kinesis_event
from tests.integration.stream_scorer.tcp_relay import TcpRelay

pytestmark = pytest.mark.integration


@pytest.fixture
def models(registered_model) -> ModelCache:  # type: ignore[no-untyped-def]
    return ModelCache(name="XGBoostChurnModel", alias="staging", refresh_seconds=60)


@pytest.fixture
def count_rows(database_url: str) -> Callable[..., int]:
    engine = get_engine(database_url)

    def count(table=predictions, *, distinct_records: bool = False) -> int:  # type: ignore[no-untyped-def]
        column = func.count(func.distinct(table.c.record_id)) if distinct_records else func.count()
        with engine.connect() as connection:
            return int(connection.execute(select(column).select_from(table)).scalar_one())

    return count


def output_lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    """The JSON lines written to stdout since the last call: log lines and EMF metric documents."""
    return [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]


def batch_metrics(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    """The metrics log line each handled batch logged since the last call."""
    return [line for line in output_lines(capsys) if line.get("message") == "batch scored"]


def test_batch_is_scored_once_and_redelivery_changes_nothing(
    database_url, models, registered_model, count_rows, capsys
) -> None:
    # GIVEN an aggregated event of 300 records
    event = kinesis_event(encoded([customer_record(row=i) for i in range(1, 301)]))
    engine = get_engine(database_url)
    # WHEN it is handled twice (Lambda redelivers after a crash before the checkpoint)
    handle(event, models=models, engine=engine, incarnations=fixed_incarnation)
    handle(event, models=models, engine=engine, incarnations=fixed_incarnation)
    # THEN the first delivery scored every record and the second found each one already stored
    first, second = batch_metrics(capsys)
    assert (first["scored"], first["duplicates"]) == (300, 0)
    assert (second["scored"], second["duplicates"]) == (0, 300)
    # AND every record is stored once, with the serving model version and a probability
    assert count_rows() == 300
    with engine.connect() as connection:
        versions = set(connection.execute(select(predictions.c.model_version).distinct()).scalars())
        probabilities = connection.execute(select(predictions.c.churn_probability)).scalars().all()
    assert versions == {registered_model.version}
    assert all(0.0 <= p <= 1.0 for p in probabilities)


def test_poison_records_are_rejected_and_the_rest_scored(database_url, models, count_rows) -> None:
    # GIVEN a batch with an undecodable payload, an unknown version and an invalid value in the middle
    good = encoded([customer_record(row=i) for i in range(1, 11)])
    poison = [b"\x00garbage", b"[9,1]", b'[1,"abc",1,5,1,0,38,0,4370,71,5,17,7,1,1,30,197.64,0]']
    event = kinesis_event([*good[:5], *poison, *good[5:]])
    engine = get_engine(database_url)
    # WHEN handled (twice: redelivery must not duplicate the rejections either)
    handle(event, models=models, engine=engine, incarnations=fixed_incarnation)
    handle(event, models=models, engine=engine, incarnations=fixed_incarnation)
    # THEN the good ones are scored, each poison record is rejected once with its reason
    assert count_rows() == 10
    with engine.connect() as connection:
        rejected = connection.execute(select(rejected_records.c.reason, rejected_records.c.source_id)).all()
    assert len(rejected) == 3
    reasons = " | ".join(r.reason for r in rejected)
    assert "undecodable payload" in reasons
    assert "unknown schema version: 9" in reasons
    assert "age_group" in reasons
    assert {r.source_id for r in rejected} == {None, "abc"}


def _rows_in(url: str) -> int:
    with get_engine(url).connect() as connection:
        return int(connection.execute(select(func.count()).select_from(predictions)).scalar_one())


def test_database_down_fails_the_batch_so_lambda_retries(models, postgres_url, capsys) -> None:
    # GIVEN an engine whose database goes away after it was set up
    port = make_url(postgres_url).port
    with TcpRelay(port) as relay:
        url = postgres_url.replace(f":{port}/", f":{relay.port}/", 1)
        engine = get_engine(url)
        event = kinesis_event(encoded([customer_record(row=i) for i in range(1, 4)]))
        relay.down()
        # WHEN the handler runs THEN it raises (nothing acknowledged) and says why in its log
        with pytest.raises(OperationalError):
            handle(event, models=models, engine=engine, incarnations=fixed_incarnation)
        failure = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert (failure["level"], failure["fault"], failure["records_in"]) == ("ERROR", "database", 3)
        assert failure["retryable"] is True
        assert "Lambda retries it" in failure["message"]
        assert _rows_in(postgres_url) == 0
        # AND the retry, once the database is back, writes the batch
        relay.up()
        handle(event, models=models, engine=engine, incarnations=fixed_incarnation)
        (retried,) = batch_metrics(capsys)
        assert (retried["records_in"], retried["scored"]) == (3, 3)
        dispose_engine(url)
    assert _rows_in(postgres_url) == 3


def test_stored_rows_read_back_as_the_records_that_were_sent(database_url, models) -> None:
    # GIVEN records with and without a label, integer and fractional money
    records = [
        customer_record(row=1, label=1, customer_value=12.5, seconds_of_use=PERIOD_SECONDS),
        customer_record(row=2, label=None, customer_value=197),
    ]
    event = kinesis_event(encoded(records), shard_id="shardId-000000000001", first_sequence=77)
    engine = get_engine(database_url)
    # WHEN handled
    handle(event, models=models, engine=engine, incarnations=fixed_incarnation)
    # THEN every column reads back (through SQLAlchemy, as the monitor reads it) as it was sent
    with engine.connect() as connection:
        rows = {r.row: r for r in connection.execute(select(predictions).order_by(predictions.c.row))}
    arrival = datetime.fromtimestamp(event["Records"][0]["kinesis"]["approximateArrivalTimestamp"], tz=UTC)
    for record in records:
        row = rows[record.row]
        assert row.event_id == f"{FIXED_INCARNATION}/shardId-000000000001:77:{record.row - 1}"
        assert (row.record_id, row.source_id, row.label) == (record.record_id, record.source_id, record.label)
        assert {name: getattr(row, name) for name in FEATURE_COLUMNS} == record.features.model_dump()
        sent_ms = record.event_time.replace(microsecond=record.event_time.microsecond // 1000 * 1000)
        assert _utc(row.event_time) == sent_ms
        assert abs(_utc(row.arrival_time) - arrival) < timedelta(milliseconds=1)
        assert row.model_name == "XGBoostChurnModel"
        assert row.churn_prediction == int(row.churn_probability >= 0.5)


def _utc(moment: datetime) -> datetime:
    """SQLite gives back naive UTC datetimes, Postgres aware ones."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def test_values_the_table_cannot_hold_are_rejected_not_retried_forever(database_url, models, count_rows) -> None:
    # GIVEN records that are well-formed JSON but whose values do not fit the table's columns
    too_big = [
        b'[1,"abc",1,1764139800123,3000000000,0,38,0,4370,71,5,17,3,1,1,30,197.64,0]',
        b'[1,"abc",2,253402300800000,8,0,38,0,4370,71,5,17,3,1,1,30,197.64,0]',
        b'[1,"abc",9223372036854775808,1764139800123,8,0,38,0,4370,71,5,17,3,1,1,30,197.64,0]',
        b'[1,"a\\u0000b",3,1764139800123,8,0,38,0,4370,71,5,17,3,1,1,30,197.64,0]',
    ]
    event = kinesis_event([*encoded([customer_record(row=9)]), *too_big])
    # WHEN handled THEN the batch succeeds (no error to retry it): they are rejected with the field at fault,
    # the good one is scored
    handle(event, models=models, engine=get_engine(database_url), incarnations=fixed_incarnation)
    with get_engine(database_url).connect() as connection:
        reasons = connection.execute(select(rejected_records.c.reason).order_by(rejected_records.c.event_id)).scalars()
        reasons = list(reasons)
    assert count_rows() == 1
    assert [r.split(":")[0] for r in reasons] == ["call_failure", "event_time_ms", "row", "source_id"]


def test_batch_of_poison_only_is_rejected_without_needing_the_model(database_url, count_rows) -> None:
    # GIVEN a registry that cannot be reached, and a batch holding nothing scorable
    def unreachable(name: str, alias: str):  # type: ignore[no-untyped-def]
        raise RegistryUnavailableError("registry down")

    models = ModelCache(name="XGBoostChurnModel", alias="staging", refresh_seconds=60, resolve=unreachable)
    event = kinesis_event([b"garbage", b"[7]"])
    # WHEN handled THEN the batch succeeds (no error to retry it) and the poison is rejected: poison never
    # waits for the registry
    handle(event, models=models, engine=get_engine(database_url), incarnations=fixed_incarnation)
    assert count_rows(rejected_records) == 2


def test_each_batch_logs_its_metrics_and_one_embedded_metric_document(
    sqlite_url, models, registered_model, capsys
) -> None:
    # GIVEN a batch of 20 records, two of them poison
    event = kinesis_event([*encoded([customer_record(row=i) for i in range(1, 19)]), b"x", b"[3]"])
    # WHEN handled twice (a warm container: nothing of the first invocation may leak into the second)
    for _ in range(2):
        handle(event, models=models, engine=get_engine(sqlite_url), incarnations=fixed_incarnation)
    lines = output_lines(capsys)
    # THEN each invocation logs one JSON line with the batch's metrics
    first, second = [line for line in lines if line.get("message") == "batch scored"]
    assert first["records_in"] == 20
    assert (first["scored"], first["duplicates"], first["rejected"]) == (18, 0, 2)
    assert (second["scored"], second["duplicates"], second["rejected"]) == (0, 18, 2)
    assert first["model_version"] == registered_model.version
    assert first["batch_latency_ms"] > 0
    assert 0 <= first["oldest_record_age_s"] < 60
    # AND one CloudWatch embedded-metric document, each with that invocation's values only
    documents = [line for line in lines if "_aws" in line]
    assert len(documents) == 2
    for document, logged in zip(documents, (first, second), strict=True):
        (directive,) = document["_aws"]["CloudWatchMetrics"]
        assert (directive["Namespace"], directive["Dimensions"]) == ("ChurnPipeline", [["service"]])
        units = {m["Name"]: m["Unit"] for m in directive["Metrics"]}
        assert units == {
            "records_in": "Count",
            "scored": "Count",
            "duplicates": "Count",
            "rejected": "Count",
            "batch_latency_ms": "Milliseconds",
            "oldest_record_age_s": "Seconds",
        }
        assert (document["service"], document["model_version"]) == ("stream_scorer", registered_model.version)
        assert {name: document[name] for name in units} == {name: [float(logged[name])] for name in units}


def test_all_predictions_of_a_batch_are_written_by_one_statement(sqlite_url, models) -> None:
    # GIVEN an engine that records every statement it sends
    engine = get_engine(sqlite_url)
    statements: list[str] = []

    def record(*arguments: object) -> None:  # (conn, cursor, statement, parameters, context, executemany)
        statements.append(str(arguments[2]))

    event.listen(engine, "before_cursor_execute", record)
    try:
        # WHEN a batch of 1,000 records is handled
        handle(
            kinesis_event(encoded([customer_record(row=i) for i in range(1, 1001)])),
            models=models,
            engine=engine,
            incarnations=fixed_incarnation,
        )
    finally:
        event.remove(engine, "before_cursor_execute", record)
    # THEN one statement wrote all of them
    writes = [s for s in statements if "INTO predictions" in s]
    assert len(writes) == 1
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(predictions)).scalar_one() == 1000


def test_a_record_sent_again_is_scored_once(database_url, models, count_rows) -> None:
    # GIVEN 50 records of a file, one of them twice in the same batch (its file was re-sent meanwhile)
    records = [customer_record(row=i) for i in range(1, 51)]
    engine = get_engine(database_url)
    first = kinesis_event(encoded([*records[:30], records[7], *records[30:]]), first_sequence=1)
    # WHEN that batch is handled, then the whole file again under new sequence numbers (a re-dropped file)
    handle(first, models=models, engine=engine, incarnations=fixed_incarnation)
    handle(
        kinesis_event(encoded(records), first_sequence=1_000),
        models=models,
        engine=engine,
        incarnations=fixed_incarnation,
    )
    # THEN each record is stored once: no row shares its record id with another
    assert count_rows() == count_rows(distinct_records=True) == 50
