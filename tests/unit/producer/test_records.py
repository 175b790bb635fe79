"""The producer makes only records whose record id fits ``predictions.record_id``."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from churn_common.database import predictions
from churn_common.schema import CustomerRow
from producer.records import customer_record
from tests.factories import TYPICAL_FEATURES

LARGEST_ROW = 2**63 - 1  # BIGINT
CUSTOMER = CustomerRow(**TYPICAL_FEATURES, churn=1)


def test_the_longest_source_id_with_the_largest_row_fits_the_record_id_column() -> None:
    # GIVEN a 60-character source id WHEN the record of the largest row is made
    record = customer_record(CUSTOMER, source_id="s" * 60, row=LARGEST_ROW, event_time=datetime.now(tz=UTC))
    # THEN its record id fits its column
    assert len(record.record_id) <= predictions.c.record_id.type.length


@pytest.mark.parametrize("length", [61, 64])
def test_a_source_id_too_long_for_the_record_id_is_refused(length: int) -> None:
    # GIVEN a source id longer than the record id column leaves room for WHEN a record is made THEN it fails
    with pytest.raises(ValidationError, match="source_id\n  String should have at most 60 characters"):
        customer_record(CUSTOMER, source_id="s" * length, row=LARGEST_ROW, event_time=datetime.now(tz=UTC))
