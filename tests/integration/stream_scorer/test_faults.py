"""Faults end to end: records put on the emulator's stream by the producer's writer, delivered by the local
Lambda service to the real handler, predictions in real Postgres, the model from a real MLflow server.

After each fault every record is scored exactly once or rejected with a reason: none missing, no
duplicate rows, nothing dead-lettered.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, make_url, select

from churn_common.aws import client
from churn_common.database import dispose_engine, get_engine, predictions, rejected_records
from churn_common.wire import CustomerRecord, encode
from infra.local.lambda_service import CheckpointStore, KinesisMappingConfig, KinesisShardPoller, MappingStats
from infra.local.resources import StackResources, event_source_mappings
from producer.kinesis_writer import KinesisWriter
from stream_scorer import handler as scorer
from stream_scorer.model_registry import registry_for
from tests.factories import customer_record
from tests.integration.stream_scorer.tcp_relay import TcpRelay

pytestmark = pytest.mark.integration

SMALL_AGGREGATE_BYTES = 2048  # ~25 records per aggregate, so a run spans several invocations
IDLE_ROUNDS_TO_STOP = 3
MAX_ROUNDS = 500


class ProcessDiedError(BaseException):
    """The local Lambda service dies (not an error it could handle)."""


class DiesBeforeCheckpoint(CheckpointStore):
    """Persists nothing and kills the process at the first checkpoint: the batch is written, not checkpointed."""

    def set(self, key: str, sequence_number: str) -> None:
        if not key.endswith("@started"):
            raise ProcessDiedError(key)
        super().set(key, sequence_number)


@dataclass
class FaultSchedule:
    """Actions to take before the n-th invocation of the function (1-based)."""

    actions: dict[int, Callable[[], None]] = field(default_factory=dict)
    invocations: int = 0

    def wrap(self, function: Callable[[dict[str, Any], Any], dict[str, Any]]) -> Callable[..., dict[str, Any]]:
        def invoke(event: dict[str, Any], context: Any) -> dict[str, Any]:
            self.invocations += 1
            if action := self.actions.get(self.invocations):
                action()
            return function(event, context)

        return invoke


@dataclass
class ScorerRun:
    aws: StackResources
    engine: Engine
    checkpoints_path: Path
    source: str = field(default_factory=lambda: f"s3://bucket/data/input/{uuid.uuid4().hex[:8]}.csv")
    sent: int = 0
    stats: MappingStats = field(default_factory=MappingStats)

    def put(self, count: int, *, poison: dict[int, bytes] | None = None) -> list[CustomerRecord]:
        """``count`` records through the producer's KPL writer, with ``poison`` payloads at given positions."""
        poison = poison or {}
        records = [customer_record(row=self.sent + i + 1, source=self.source) for i in range(count)]
        writer = KinesisWriter(
            stream_name=self.aws.stream_name, kinesis=client("kinesis"), max_aggregate_bytes=SMALL_AGGREGATE_BYTES
        )
        with writer:
            for position, record in enumerate(records):
                if position in poison:
                    writer.add(f"poison-{self.sent + position}", poison[position])
                writer.add(record.record_id, encode(record))
            writer.flush()
        self.sent += count
        return records

    def pollers(
        self, function: Callable[..., dict[str, Any]], *, checkpoints: CheckpointStore | None = None, **settings: Any
    ) -> list[KinesisShardPoller]:
        mapping = {**event_source_mappings()["stream_scorer"], "maximum_batching_window_in_seconds": 0, **settings}
        config = KinesisMappingConfig.from_mapping(mapping, on_failure_queue_url=self.aws.scorer_dlq_url)
        store = checkpoints or CheckpointStore(self.checkpoints_path)
        shards = client("kinesis").list_shards(StreamName=self.aws.stream_name)["Shards"]
        return [
            KinesisShardPoller(
                name="stream_scorer",
                stream_name=self.aws.stream_name,
                stream_arn=self.aws.stream_arn,
                shard_id=shard["ShardId"],
                handler=function,
                config=config,
                checkpoints=store,
                stats=self.stats,
                sleep=lambda _: None,
            )
            for shard in shards
        ]

    def drain(self, function: Callable[..., dict[str, Any]] = scorer.lambda_handler, **settings: Any) -> None:
        """Poll every shard until the stream is consumed (the checkpoint store persists across calls)."""
        pollers = self.pollers(function, **settings)
        idle = 0
        for _ in range(MAX_ROUNDS):
            delivered = sum(p.poll_once() for p in pollers)
            idle = 0 if delivered else idle + 1
            if idle >= IDLE_ROUNDS_TO_STOP:
                return
        pytest.fail("the stream was not consumed")

    def assert_each_record_once(self, records: list[CustomerRecord], *, rejected: int = 0) -> None:
        with self.engine.connect() as connection:
            stored = connection.execute(select(predictions.c.record_id)).scalars().all()
            rejects = connection.execute(select(rejected_records.c.reason, rejected_records.c.payload)).all()
        assert len(stored) == len(set(stored)), "duplicate prediction rows"
        assert set(stored) == {r.record_id for r in records}, "records missing or unexpected"
        assert len(rejects) == rejected
        assert all(r.reason and r.payload for r in rejects)
        dead_letters = client("sqs").receive_message(QueueUrl=self.aws.scorer_dlq_url, WaitTimeSeconds=0)
        assert "Messages" not in dead_letters, "records were dead-lettered"


def _port_of(url: str) -> int:
    port = make_url(url).port
    assert port is not None
    return port


def _via(relay: TcpRelay, url: str) -> str:
    return make_url(url).set(port=relay.port).render_as_string(hide_password=False)


@pytest.fixture(autouse=True)
def cold_container() -> Iterator[None]:
    """Each test starts like a fresh Lambda container: no model loaded, no registry client."""
    scorer._model_cache.cache_clear()
    registry_for.cache_clear()
    yield
    scorer._model_cache.cache_clear()
    registry_for.cache_clear()


@pytest.fixture
def registry(mlflow_server, served_model) -> tuple[Any, Any]:  # type: ignore[no-untyped-def]
    return mlflow_server, served_model


@pytest.fixture
def make_run(aws, postgres_url, registry, env, tmp_path):  # type: ignore[no-untyped-def]
    """A scorer wired like the Lambda (settings from the environment), optionally through relays."""
    mlflow_server, served_model = registry
    relays: list[TcpRelay] = []
    urls: list[str] = []

    def make(
        *, database_relay: bool = False, registry_relay_up: bool | None = None, alias: str | None = None, **extra: str
    ) -> tuple[ScorerRun, TcpRelay | None]:
        relay = None
        database_url = postgres_url
        if database_relay:
            relay = TcpRelay(_port_of(postgres_url))
            database_url = _via(relay, postgres_url)
        tracking_uri = mlflow_server.url
        if registry_relay_up is not None:
            relay = TcpRelay(mlflow_server.port, up=registry_relay_up)
            tracking_uri = f"http://127.0.0.1:{relay.port}"
        relays.extend([relay] if relay else [])
        urls.append(database_url)
        env(
            DATABASE_URL=database_url,
            MLFLOW_TRACKING_URI=tracking_uri,
            MODEL_ALIAS=alias or served_model.alias,
            **extra,
        )
        run = ScorerRun(aws=aws, engine=get_engine(postgres_url), checkpoints_path=tmp_path / "checkpoints.json")
        return run, relay

    yield make
    for relay in relays:
        relay.down()
    for url in urls:
        dispose_engine(url)


def _log_lines(output: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("service") == "stream_scorer"]


def _batch_lines(output: str) -> list[dict[str, Any]]:
    """The per-batch metrics lines of the handler's JSON log."""
    return [line for line in _log_lines(output) if line.get("message") == "batch scored"]


def _faults(output: str) -> list[str]:
    return [line["fault"] for line in _log_lines(output) if line.get("level") == "ERROR"]


def test_database_down_for_part_of_a_run(make_run, served_model, capsys) -> None:
    # GIVEN 300 records on the stream, and a database that goes away after the first invocation and
    # comes back three invocations later
    run, relay = make_run(database_relay=True)
    records = run.put(300)
    schedule = FaultSchedule({2: relay.down, 5: relay.up})
    # WHEN the mapping delivers them (small batches, AWS retry and bisect settings)
    run.drain(schedule.wrap(scorer.lambda_handler), batch_size=2)
    # THEN the failed invocations were retried until the database was back, and each record stored once
    assert run.stats.errors >= 3
    faults = _faults(capsys.readouterr().out)
    assert faults
    assert set(faults) == {"database"}
    run.assert_each_record_once(records)


def test_registry_unreachable_at_cold_start(make_run, served_model, capsys) -> None:
    # GIVEN a fresh container whose registry does not answer until the third invocation
    run, relay = make_run(registry_relay_up=False)
    records = run.put(120)
    schedule = FaultSchedule({3: relay.up})
    # WHEN the mapping delivers the records
    run.drain(schedule.wrap(scorer.lambda_handler))
    # THEN the first invocations failed (nothing written, nothing acknowledged), later ones scored everything
    assert _faults(capsys.readouterr().out)[:2] == ["registry", "registry"]
    run.assert_each_record_once(records)
    with run.engine.connect() as connection:
        versions = set(connection.execute(select(predictions.c.model_version).distinct()).scalars())
    assert versions == {served_model.version}


def test_same_batch_delivered_twice(make_run, tmp_path, capsys) -> None:
    # GIVEN a stream whose records were all scored
    run, _ = make_run()
    records = run.put(200)
    run.drain()
    first = _batch_lines(capsys.readouterr().out)
    # WHEN every batch is delivered again (a mapping starting over from TRIM_HORIZON)
    run.checkpoints_path = tmp_path / "fresh-checkpoints.json"
    run.drain()
    second = _batch_lines(capsys.readouterr().out)
    # THEN nothing changed: the second pass found every record already stored
    run.assert_each_record_once(records)
    assert sum(line["scored"] for line in first) == 200
    assert sum(line["scored"] for line in second) == 0
    assert sum(line["duplicates"] for line in second) == 200


def test_crash_after_the_write_and_before_the_checkpoint(make_run, capsys) -> None:
    # GIVEN a Lambda service that dies right after the first batch was written, before its checkpoint
    run, _ = make_run()
    records = run.put(150)
    (first_shard, *_) = run.pollers(scorer.lambda_handler, checkpoints=DiesBeforeCheckpoint(run.checkpoints_path))
    with pytest.raises(ProcessDiedError):
        _poll_until_it_dies(first_shard)
    written_before_the_crash = sum(line["scored"] for line in _batch_lines(capsys.readouterr().out))
    # WHEN the service restarts from its persisted checkpoints
    run.drain()
    after_restart = _batch_lines(capsys.readouterr().out)
    # THEN the written batch was delivered again and changed nothing; every record is stored once
    assert written_before_the_crash > 0
    assert sum(line["duplicates"] for line in after_restart) == written_before_the_crash
    run.assert_each_record_once(records)


def _poll_until_it_dies(poller: KinesisShardPoller) -> None:
    for _ in range(MAX_ROUNDS):
        poller.poll_once()


def test_poison_records_in_the_middle_of_a_batch(make_run) -> None:
    # GIVEN one batch per shard with an undecodable payload, an unknown version and an invalid value inside
    run, _ = make_run()
    poison = {
        40: b"\x00\x01 not json",
        41: b'[2,"from-the-future"]',
        90: b'[1,"abc",7,1764139800123,8,0,38,0,4370,71,5,17,9,1,1,30,197.64,0]',
    }
    records = run.put(180, poison=poison)
    # WHEN the mapping delivers them
    run.drain()
    # THEN the batches succeeded at once (no retry, nothing blocked), poison rejected with reasons and payloads
    assert run.stats.errors == 0
    run.assert_each_record_once(records, rejected=3)
    with run.engine.connect() as connection:
        rejected = {r.payload: r.reason for r in connection.execute(select(rejected_records))}
    assert rejected[poison[41].decode()] == "unknown schema version: 2"
    assert "age_group" in rejected[poison[90].decode()]
    assert next(p for p in rejected if p.startswith("base64:"))


def test_alias_moved_to_a_new_version_mid_stream(make_run, mlflow_server, served_model) -> None:
    # GIVEN a stream being scored by the version an alias points at, re-checked before every batch
    alias = f"champion-{uuid.uuid4().hex[:8]}"
    mlflow_server.set_alias(served_model.name, alias, served_model.version)
    run, _ = make_run(alias=alias, MODEL_REFRESH_SECONDS="0")
    before = run.put(100)
    run.drain()
    # WHEN a new version is promoted (the alias moved) while records keep arriving
    promoted = mlflow_server.register(served_model.booster, name=served_model.name)
    mlflow_server.set_alias(served_model.name, alias, promoted)
    after = run.put(100)
    run.drain()
    # THEN records before the move carry the old version, those after it the new one; each stored once
    run.assert_each_record_once(before + after)
    with run.engine.connect() as connection:
        version_of = dict(connection.execute(select(predictions.c.record_id, predictions.c.model_version)).all())
    assert {version_of[r.record_id] for r in before} == {served_model.version}
    assert {version_of[r.record_id] for r in after} == {promoted}
