"""Typed view of the Kinesis event Lambda delivers, and deaggregation into user records."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Any

from aws_kinesis_agg import DIGEST_SIZE, MAGIC
from aws_kinesis_agg.deaggregator import messages_pb2  # imported via the deaggregator, which sets up its path
from google.protobuf.message import DecodeError
from pydantic import BaseModel, ConfigDict


class KinesisData(BaseModel):
    model_config = ConfigDict(extra="allow")

    kinesisSchemaVersion: str  # noqa: N815 - AWS field names
    partitionKey: str  # noqa: N815
    sequenceNumber: str  # noqa: N815
    data: str
    approximateArrivalTimestamp: float  # noqa: N815


class KinesisEventRecord(BaseModel):
    model_config = ConfigDict(extra="allow")

    kinesis: KinesisData
    eventSource: str  # noqa: N815
    eventID: str  # noqa: N815
    eventSourceARN: str  # noqa: N815


class KinesisEvent(BaseModel):
    Records: list[KinesisEventRecord]


@dataclass(frozen=True, slots=True)
class UserRecords:
    """The customer records of one event after deaggregation, column-wise: entry ``i`` of every list
    belongs to the same record. Columns, because every later step works on the batch as a whole."""

    event_ids: list[str]
    payloads: list[bytes]
    arrival_times: list[float]  # approximate arrival of the enclosing Kinesis record, epoch seconds

    def __len__(self) -> int:
        return len(self.payloads)


def event_id_prefix(shard_id: str, sequence_number: str) -> str:
    """Event ids are ``shardId:sequenceNumber:subSequenceNumber``: unique per user record and the same on
    every redelivery, which is what makes the writes idempotent."""
    return f"{shard_id}:{sequence_number}:"


def shard_of(event_id: str) -> str:
    return event_id.split(":", 1)[0]


def unpack_aggregate(data: bytes) -> list[bytes] | None:
    """User payloads of a KPL aggregate, or None when ``data`` is not a valid aggregate.

    Uses the aggregation format of aws-kinesis-agg (magic, protobuf, MD5) directly: its generic
    deaggregator re-encodes every payload in base64 and copies the whole event record per user record,
    which costs about 7x more per batch; and on a corrupt aggregate it prints and drops the rest, where
    this hands the aggregate on whole so the decoder rejects it with its payload.
    """
    if not data.startswith(MAGIC) or len(data) <= len(MAGIC) + DIGEST_SIZE:
        return None
    body, digest = data[len(MAGIC) : -DIGEST_SIZE], data[-DIGEST_SIZE:]
    if hashlib.md5(body, usedforsecurity=False).digest() != digest:
        return None
    aggregate = messages_pb2.AggregatedRecord()
    try:
        aggregate.ParseFromString(body)
    except DecodeError:
        return None
    return [record.data for record in aggregate.records]


def user_records(event: dict[str, Any]) -> UserRecords:
    """Deaggregate KPL records; any other Kinesis record is one user record, sub-sequence 0."""
    parsed = KinesisEvent.model_validate(event)
    event_ids: list[str] = []
    payloads: list[bytes] = []
    arrival_times: list[float] = []
    for record in parsed.Records:
        kinesis = record.kinesis
        data = base64.b64decode(kinesis.data)
        # Not an aggregate, or a corrupt or empty one: handed on whole, so it is scored or rejected, never lost.
        parts = unpack_aggregate(data) or [data]
        prefix = event_id_prefix(shard_of(record.eventID), kinesis.sequenceNumber)
        event_ids.extend(map(prefix.__add__, map(str, range(len(parts)))))
        payloads.extend(parts)
        arrival_times.extend([kinesis.approximateArrivalTimestamp] * len(parts))
    return UserRecords(event_ids=event_ids, payloads=payloads, arrival_times=arrival_times)
