"""A validated CSV row to the record that goes on the stream."""

from __future__ import annotations

from datetime import datetime

from churn_common.schema import CustomerRow
from churn_common.wire import CustomerRecord


def customer_record(customer: CustomerRow, *, source_id: str, row: int, event_time: datetime) -> CustomerRecord:
    # A CustomerRow is a CustomerFeatures already validated against the same constraints: pydantic takes
    # the instance as it is (no copy, no second validation), which makes this about 4x cheaper.
    return CustomerRecord(
        source_id=source_id,
        row=row,
        event_time=event_time,
        features=customer,
        label=customer.churn,
        customer_id=customer.customer_id,
    )
