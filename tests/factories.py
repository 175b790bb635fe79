"""Factories for records and AWS-shaped events, shared by tests and benchmarks."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from aws_kinesis_agg.aggregator import RecordAggregator

from churn_common.schema import CustomerFeatures
from churn_common.wire import CustomerRecord, encode, source_id_for
from tests.aws_events import kinesis_record

TYPICAL_FEATURES: dict[str, Any] = {
    "call_failure": 8,
    "complains": 0,
    "subscription_length": 38,
    "charge_amount": 0,
    "seconds_of_use": 4370,
    "frequency_of_use": 71,
    "frequency_of_sms": 5,
    "distinct_called_numbers": 17,
    "age_group": 3,
    "tariff_plan": 1,
    "status": 1,
    "age": 30,
    "customer_value": 197.64,
}


def customer_record(
    *,
    row: int = 1,
    source: str = "s3://bucket/data/input/f.csv",
    label: int | None = 0,
    customer_id: str | None = None,
    **features: Any,
) -> CustomerRecord:
    return CustomerRecord(
        source_id=source_id_for(source),
        row=row,
        event_time=datetime.now(tz=UTC),
        features=CustomerFeatures(**{**TYPICAL_FEATURES, **features}),
        label=label,
        customer_id=customer_id,
    )


def records_from_frame(frame: Any, *, source: str, event_time: datetime | None = None) -> list[CustomerRecord]:
    event_time = event_time or datetime.now(tz=UTC)
    source_id = source_id_for(source)
    feature_names = list(CustomerFeatures.model_fields)
    out = []
    for row_number, row in enumerate(frame.to_dict("records"), start=1):
        label = row.get("churn", row.get("label"))
        out.append(
            CustomerRecord(
                source_id=source_id,
                row=row_number,
                event_time=event_time,
                features=CustomerFeatures(**{k: row[k] for k in feature_names}),
                label=None if label is None else int(label),
            )
        )
    return out


def kinesis_event(
    payloads: Sequence[bytes],
    *,
    shard_id: str = "shardId-000000000000",
    first_sequence: int = 1,
    aggregate: bool = True,
    stream_arn: str = "arn:aws:kinesis:us-east-1:123456789012:stream/customer-records",
) -> dict[str, Any]:
    """The Kinesis event Lambda delivers, laid out as AWS's recorded sample (``tests/events/``); with
    ``aggregate`` the payloads are KPL-packed first."""
    if aggregate:
        aggregator = RecordAggregator()
        blobs: list[bytes] = []
        for index, payload in enumerate(payloads):
            full = aggregator.add_user_record(f"pk-{index}", payload)
            if full is not None:
                blobs.append(full.get_contents()[2])
        if aggregator.get_num_user_records():
            blobs.append(aggregator.clear_and_get().get_contents()[2])
    else:
        blobs = list(payloads)
    now = time.time()
    return {
        "Records": [
            kinesis_record(
                blob,
                partition_key=f"pk-{offset}",
                sequence_number=str(first_sequence + offset),
                shard_id=shard_id,
                stream_arn=stream_arn,
                arrival=now,
            )
            for offset, blob in enumerate(blobs)
        ]
    }


def encoded(records: Sequence[CustomerRecord]) -> list[bytes]:
    return [encode(r) for r in records]


FIXED_INCARNATION = "1764139800000"


def fixed_incarnation(_stream_arn: str) -> str:
    """One stream incarnation for events built here (no emulator behind them to ask for its creation time)."""
    return FIXED_INCARNATION
