"""A dropped file with a ``customer_id`` column puts each row's id on the stream; rows without one, and files
without the column, put records that end at their label."""

from __future__ import annotations

import pytest

from churn_common.settings import get_settings
from churn_common.wire import CUSTOMER_ID_INDEX
from producer.handler import lambda_handler
from tests.integration.producer.conftest import Drops, read_stream

pytestmark = pytest.mark.integration

HEADER = (
    "customer_id,Call  Failure,Complains,Subscription  Length,Charge  Amount,Seconds of Use,Frequency of use,"
    "Frequency of SMS,Distinct Called Numbers,Age Group,Tariff Plan,Status,Age,Customer Value,Churn"
)
FEATURES = "8,0,38,0,4370,71,5,17,3,1,1,30,197.64,0"


def test_each_record_on_the_stream_carries_the_customer_id_of_its_row(drops: Drops) -> None:
    # GIVEN a file whose rows name customers, one row without an id and one with an unusable id
    text = f"{HEADER}\nC1,{FEATURES}\n,{FEATURES}\n00042,{FEATURES}\n{'x' * 65},{FEATURES}\n"
    drops.put("customers.csv", text.encode())
    # WHEN the drop is processed
    lambda_handler(drops.event(), None)
    # THEN the three good rows are on the stream with their ids as written, the unusable one rejected
    stream = read_stream(get_settings().stream_name)
    by_row = {record.fields[2]: record.fields for record in stream.records}
    assert {row: fields[CUSTOMER_ID_INDEX] for row, fields in by_row.items()} == {1: "C1", 2: None, 3: "00042"}
    manifest = drops.manifest("customers.csv")
    assert (manifest["records_sent"], manifest["rows_rejected"], manifest["extra_columns"]) == (3, 1, [])
    [rejected] = drops.rejects(manifest)
    assert any("customer_id" in reason for reason in rejected["reasons"])
