"""Typed view of the Kinesis event Lambda delivers, and deaggregation into user records."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aws_kinesis_agg.deaggregator import iter_deaggregate_records
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
class UserRecord:
    """One customer record after deaggregation, with the key that makes writes idempotent."""

    event_id: str
    sequence_number: str
    arrival_time: datetime
    payload: bytes


def shard_of(event_id: str) -> str:
    return event_id.split(":", 1)[0]


def user_records(event: dict[str, Any]) -> list[UserRecord]:
    """Deaggregate KPL records; ``event_id`` is ``shardId:sequenceNumber:subSequenceNumber``."""
    KinesisEvent.model_validate(event)
    records: list[UserRecord] = []
    for record in iter_deaggregate_records(event["Records"]):
        kinesis = record["kinesis"]
        event_id = f"{shard_of(record['eventID'])}:{kinesis['sequenceNumber']}:{kinesis.get('subSequenceNumber', 0)}"
        records.append(
            UserRecord(
                event_id=event_id,
                sequence_number=kinesis["sequenceNumber"],
                arrival_time=datetime.fromtimestamp(float(kinesis["approximateArrivalTimestamp"]), tz=UTC),
                payload=base64.b64decode(kinesis["data"]),
            )
        )
    return records
