"""Typed view of the Kinesis event Lambda delivers, and deaggregation into user records."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from aws_kinesis_agg import DIGEST_SIZE, MAGIC
from aws_kinesis_agg.deaggregator import messages_pb2  # imported via the deaggregator, which sets up its path
from google.protobuf.message import DecodeError
from pydantic import BaseModel, ConfigDict, ValidationError

from churn_common.errors import PermanentError
from churn_common.event_description import describe, first_error
from churn_common.wire import Rejection
from stream_scorer.stream_incarnation import IncarnationOf, qualified

EXPECTED_EVENT = "a Kinesis event: Records[].eventSource == aws:kinesis"
UNDECODABLE_DATA = "undecodable base64 data"


class UnexpectedEventError(PermanentError, ValueError):
    """The scorer was handed something other than a Kinesis event: the same event fails the same way on
    every retry, so this is permanent, unlike the transient faults the handler lets Lambda retry."""

    def __init__(self, *, arrived: str, problem: str) -> None:
        super().__init__(f"expected {EXPECTED_EVENT}; arrived {arrived} ({problem})")
        self.expected, self.arrived, self.problem = EXPECTED_EVENT, arrived, problem


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
    eventSource: Literal["aws:kinesis"]  # noqa: N815
    eventID: str  # noqa: N815
    eventSourceARN: str  # noqa: N815


class KinesisEvent(BaseModel):
    Records: list[KinesisEventRecord]


@dataclass(frozen=True, slots=True)
class UserRecords:
    """The customer records of one event after deaggregation, column-wise: entry ``i`` of every list
    belongs to the same record. Columns, because every later step works on the batch as a whole.

    ``rejections`` are records refused before their payload could be read (Kinesis data that is not
    base64); their payload is the data as it arrived. They come last, after every decodable record, so
    the positions of the decodable ones are the same in :attr:`decodable_payloads` and in the columns.
    """

    event_ids: list[str]
    payloads: list[bytes]
    arrival_times: list[float]  # approximate arrival of the enclosing Kinesis record, epoch seconds
    rejections: list[Rejection] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.payloads)

    @property
    def decodable_payloads(self) -> Sequence[bytes]:
        if not self.rejections:
            return self.payloads
        return self.payloads[: len(self.payloads) - len(self.rejections)]


def event_id_prefix(incarnation: str, shard_id: str, sequence_number: str) -> str:
    """Event ids are ``<stream incarnation>/shardId:sequenceNumber:subSequenceNumber``: unique per user record
    and the same on every redelivery; the incarnation keeps them unique when the stream is re-created and
    its sequence numbers start again (see :mod:`stream_scorer.stream_incarnation`)."""
    return f"{qualified(incarnation, shard_id)}:{sequence_number}:"


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


def parse_kinesis_event(event: Any) -> KinesisEvent:
    """The event as a Kinesis event, or :class:`UnexpectedEventError` naming what arrived instead."""
    try:
        return KinesisEvent.model_validate(event)
    except ValidationError as exc:
        raise UnexpectedEventError(arrived=describe(event), problem=first_error(exc)) from None


def user_records(event: dict[str, Any], *, incarnation_of: IncarnationOf) -> UserRecords:
    """Deaggregate KPL records; any other Kinesis record is one user record, sub-sequence 0."""
    event_ids: list[str] = []
    payloads: list[bytes] = []
    arrival_times: list[float] = []
    undecodable: list[KinesisEventRecord] = []
    incarnations: dict[str, str] = {}  # one stream per event in practice: asked once, not per record

    def prefix_of(record: KinesisEventRecord) -> str:
        arn = record.eventSourceARN
        if arn not in incarnations:
            incarnations[arn] = incarnation_of(arn)
        return event_id_prefix(incarnations[arn], shard_of(record.eventID), record.kinesis.sequenceNumber)

    b64decode = base64.b64decode
    for record in parse_kinesis_event(event).Records:
        kinesis = record.kinesis
        try:
            data = b64decode(kinesis.data, validate=True)
        except ValueError:
            undecodable.append(record)
            continue
        # Not an aggregate, or a corrupt or empty one: handed on whole, so it is scored or rejected, never lost.
        parts = unpack_aggregate(data) or [data]
        prefix = prefix_of(record)
        event_ids.extend(map(prefix.__add__, map(str, range(len(parts)))))
        payloads.extend(parts)
        arrival_times.extend([kinesis.approximateArrivalTimestamp] * len(parts))
    rejections = [Rejection(len(payloads) + offset, UNDECODABLE_DATA) for offset in range(len(undecodable))]
    for record in undecodable:
        event_ids.append(prefix_of(record) + "0")
        payloads.append(record.kinesis.data.encode("utf-8", "surrogatepass"))
        arrival_times.append(record.kinesis.approximateArrivalTimestamp)
    return UserRecords(event_ids=event_ids, payloads=payloads, arrival_times=arrival_times, rejections=rejections)
