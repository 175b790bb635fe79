"""Fixtures for the producer against the emulator: drops, the SQS event Lambda would send, the stream
read back, and fault injection for what the emulator cannot do (throttling, partial failures)."""

from __future__ import annotations

import base64
import csv
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from aws_kinesis_agg.deaggregator import iter_deaggregate_records
from botocore.awsrequest import AWSResponse

from churn_common.aws import client
from churn_common.schema import FEATURE_COLUMNS, LABEL_COLUMN, normalise_header
from churn_common.settings import get_settings
from churn_common.wire import decode_batch, record_id_for
from tests.aws_events import sqs_event as build_sqs_event
from tests.conftest import real_data_dir

GENERATED_ROWS = 1_000


@dataclass(frozen=True, slots=True)
class StreamRecord:
    shard_id: str
    partition_key: str
    fields: tuple[Any, ...]

    @property
    def record_id(self) -> str:
        return record_id_for(self.fields[1], self.fields[2])


@dataclass(frozen=True, slots=True)
class StreamContents:
    records: list[StreamRecord]
    kinesis_records: int
    kinesis_bytes: int

    @property
    def record_ids(self) -> list[str]:
        return [r.record_id for r in self.records]


def read_stream(stream_name: str) -> StreamContents:
    """Everything on every shard from the start: deaggregated and decoded as a consumer would."""
    kinesis = client("kinesis")
    records: list[StreamRecord] = []
    kinesis_records = kinesis_bytes = 0
    for shard in kinesis.list_shards(StreamName=stream_name)["Shards"]:
        iterator = kinesis.get_shard_iterator(
            StreamName=stream_name, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while iterator:
            response = kinesis.get_records(ShardIterator=iterator, Limit=10_000)
            if not response["Records"]:
                break
            kinesis_records += len(response["Records"])
            kinesis_bytes += sum(len(r["Data"]) + len(r["PartitionKey"].encode()) for r in response["Records"])
            users = list(iter_deaggregate_records(response["Records"], data_format="Boto3"))
            payloads = [
                base64.b64decode(u["kinesis"]["data"]) if u["kinesis"].get("aggregated") else u["kinesis"]["data"]
                for u in users
            ]
            decoded = decode_batch(payloads)
            assert decoded.rejections == [], decoded.rejections
            records.extend(
                StreamRecord(shard["ShardId"], users[i]["kinesis"]["partitionKey"], fields)
                for i, fields in zip(decoded.indices, decoded.records, strict=True)
            )
            iterator = response.get("NextShardIterator")
    return StreamContents(records=records, kinesis_records=kinesis_records, kinesis_bytes=kinesis_bytes)


def rows_by_shard(records: list[StreamRecord]) -> dict[str, list[int]]:
    """Row numbers in the order each shard stores them."""
    rows: dict[str, list[int]] = {}
    for record in records:
        rows.setdefault(record.shard_id, []).append(record.fields[2])
    return rows


def assert_in_order_per_shard(records: list[StreamRecord]) -> None:
    for shard_id, rows in rows_by_shard(records).items():
        assert rows == sorted(rows), f"{shard_id} holds rows out of order"


def user_keys(entry: dict[str, Any]) -> list[str]:
    """The partition keys of the customer records packed in one PutRecords entry."""
    record = {
        "Data": entry["Data"],
        "PartitionKey": entry["PartitionKey"],
        "SequenceNumber": "1",
        "ApproximateArrivalTimestamp": datetime.now(tz=UTC),
        "EncryptionType": "NONE",
    }
    return [u["kinesis"]["partitionKey"] for u in iter_deaggregate_records([record], data_format="Boto3")]


def expected_rows(data: bytes) -> dict[int, tuple[Any, ...]]:
    """Row number -> (13 features, label) read with the plain csv module, independently of the splitter."""
    reader = csv.reader(io.StringIO(data.decode("utf-8-sig")))
    names = [normalise_header(n) for n in next(reader)]
    rows: dict[int, tuple[Any, ...]] = {}
    for number, cells in enumerate((c for c in reader if c), start=1):
        values = dict(zip(names, cells, strict=True))
        features = tuple(float(values[c]) if c == "customer_value" else int(values[c]) for c in FEATURE_COLUMNS)
        rows[number] = (*features, int(values[LABEL_COLUMN]) if values.get(LABEL_COLUMN) else None)
    return rows


def sqs_event(messages: list[dict[str, Any]], *, queue_arn: str) -> dict[str, Any]:
    """The event Lambda delivers for received messages, built from AWS's recorded sample (``tests/events/``),
    not by the local Lambda stand-in under test."""
    return build_sqs_event(messages, queue_arn=queue_arn, region="us-east-1")


@dataclass
class Drops:
    """Drops files into the input prefix and collects the notifications S3 sends for them."""

    resources: Any
    s3: Any = field(default_factory=lambda: client("s3"))

    @property
    def bucket(self) -> str:
        return str(self.resources.bucket)

    def put(self, name: str, data: bytes) -> str:
        key = f"{get_settings().input_prefix}{name}"
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=data)
        return key

    def manifests_of(self, name: str) -> list[dict[str, Any]]:
        """Every manifest written for the object ``name`` under the input prefix, oldest first; found by
        listing all manifests and reading their ``source_uri``, not by the producer's key layout."""
        uri = f"s3://{self.bucket}/{get_settings().input_prefix}{name}"
        found = [self.read_json(k) for k in sorted(self.stored_keys()) if k.startswith("data/manifests/")]
        return sorted((m for m in found if m.get("source_uri") == uri), key=lambda m: m["started_at"])

    def manifest(self, name: str) -> dict[str, Any]:
        """The one manifest of ``name``; a test with several uploads under one key uses :meth:`manifests_of`."""
        (manifest,) = self.manifests_of(name)
        return manifest

    def rejects(self, manifest: dict[str, Any]) -> list[dict[str, Any]]:
        prefix = f"s3://{self.bucket}/"
        assert manifest["rejected_uri"].startswith(prefix)
        return self.read_lines(manifest["rejected_uri"].removeprefix(prefix))

    def messages(self, *, expected: int, include_test_event: bool = True, rounds: int = 20) -> list[dict[str, Any]]:
        """At least ``expected`` object notifications (the test event S3 sent at set-up comes along), or what
        arrived in ``rounds`` receives of up to a second each."""
        sqs = client("sqs")
        messages: list[dict[str, Any]] = []
        for _ in range(rounds):
            batch = sqs.receive_message(
                QueueUrl=self.resources.file_drops_queue_url,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=1,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            messages.extend(batch)
            if sum("s3:TestEvent" not in m["Body"] for m in messages) >= expected:
                break
        if not include_test_event:
            messages = [m for m in messages if "s3:TestEvent" not in m["Body"]]
        return messages

    def event(self, *, expected: int = 1, include_test_event: bool = True) -> dict[str, Any]:
        messages = self.messages(expected=expected, include_test_event=include_test_event)
        return self.event_of(messages)

    def event_of(self, messages: list[dict[str, Any]]) -> dict[str, Any]:
        return sqs_event(messages, queue_arn=self.resources.file_drops_queue_arn)

    def read_json(self, key: str) -> Any:
        return json.loads(self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read())

    def read_lines(self, key: str) -> list[dict[str, Any]]:
        body = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read().decode()
        return [json.loads(line) for line in body.splitlines()]

    def stored_keys(self) -> set[str]:
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket)
        return {o["Key"] for page in pages for o in page.get("Contents", [])}


@pytest.fixture
def drops(aws) -> Drops:  # type: ignore[no-untyped-def]
    return Drops(aws)


@pytest.fixture(scope="session")
def customer_csv(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The real dataset file when it is at hand, else a generated file in the dataset's format."""
    data_dir = real_data_dir()
    if data_dir is not None:
        return (data_dir / "customer_churn_0.csv").read_bytes()
    from data.churn_csv import write_churn_csv
    from data.synthetic import generate

    path = Path(tmp_path_factory.mktemp("drops")) / "generated.csv"
    write_churn_csv(generate(n_rows=GENERATED_ROWS, seed=7), path, original_headers=True)
    return path.read_bytes()


FaultPlan = Callable[[int, int, dict[str, Any]], str | None]


@dataclass
class PutRecordsFaults:
    """Fails chosen PutRecords entries before they reach the emulator; the others are put for real.

    ``plan(call, position, entry)`` returns an error code for an entry to fail, or ``None``. A
    ``whole_call_error`` fails entire calls instead (the API's own throttling response).
    """

    plan: FaultPlan | None = None
    whole_call_error: str | None = None
    calls: list[dict[str, int]] = field(default_factory=list)
    requests: list[list[dict[str, Any]]] = field(default_factory=list)
    _passthrough: Any = field(default_factory=lambda: boto3.client("kinesis", region_name="us-east-1"))

    def install(self, kinesis: Any) -> None:
        kinesis.meta.events.register("before-parameter-build.kinesis.PutRecords", self._keep_params)
        kinesis.meta.events.register("before-call.kinesis.PutRecords", self._respond)

    def uninstall(self, kinesis: Any) -> None:
        kinesis.meta.events.unregister("before-parameter-build.kinesis.PutRecords", self._keep_params)
        kinesis.meta.events.unregister("before-call.kinesis.PutRecords", self._respond)

    @staticmethod
    def _keep_params(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["put_records_params"] = params

    def _respond(self, context: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        params = context["put_records_params"]
        entries = params["Records"]
        call = len(self.calls)
        self.requests.append(list(entries))
        size = sum(len(e["Data"]) + len(e["PartitionKey"].encode()) for e in entries)
        if self.whole_call_error:
            self.calls.append({"entries": len(entries), "bytes": size, "failed": len(entries)})
            error = {"Error": {"Code": self.whole_call_error, "Message": "injected"}, "ResponseMetadata": {}}
            return AWSResponse("http://injected", 400, {}, None), error
        codes = [self.plan(call, i, e) if self.plan else None for i, e in enumerate(entries)]
        passing = [e for e, code in zip(entries, codes, strict=True) if code is None]
        sent = iter(
            self._passthrough.put_records(StreamName=params["StreamName"], Records=passing)["Records"]
            if passing
            else []
        )
        results = [next(sent) if code is None else {"ErrorCode": code, "ErrorMessage": "injected"} for code in codes]
        failed = sum(code is not None for code in codes)
        self.calls.append({"entries": len(entries), "bytes": size, "failed": failed})
        return AWSResponse("http://injected", 200, {}, None), {"FailedRecordCount": failed, "Records": results}


@pytest.fixture
def put_records_faults(aws) -> Iterator[Callable[..., PutRecordsFaults]]:  # type: ignore[no-untyped-def]
    """Installs faults on the shared kinesis client (the one the handler uses) for one test."""
    installed: list[PutRecordsFaults] = []

    def install(plan: FaultPlan | None = None, *, whole_call_error: str | None = None) -> PutRecordsFaults:
        faults = PutRecordsFaults(plan=plan, whole_call_error=whole_call_error)
        faults.install(client("kinesis"))
        installed.append(faults)
        return faults

    yield install
    for faults in installed:
        faults.uninstall(client("kinesis"))
