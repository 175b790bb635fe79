"""A validated CSV row to the record that goes on the stream."""

from __future__ import annotations

from datetime import datetime

from churn_common.schema import FEATURE_COLUMNS, CustomerFeatures, CustomerRow
from churn_common.wire import CustomerRecord


def customer_record(customer: CustomerRow, *, source_id: str, row: int, event_time: datetime) -> CustomerRecord:
    # The row was validated against the same constraints, so the features need no second validation.
    features = CustomerFeatures.model_construct(**{name: getattr(customer, name) for name in FEATURE_COLUMNS})
    return CustomerRecord(source_id=source_id, row=row, event_time=event_time, features=features, label=customer.churn)
