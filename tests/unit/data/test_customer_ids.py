"""Customer ids in synthetic batches and dataset-format files: stable per seed and row, read back as text."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pytest

from churn_common.schema import FEATURE_COLUMNS, LABEL_COLUMN, CustomerRow
from data.churn_csv import read_churn_csv, write_churn_csv
from data.synthetic import generate, main
from infra.local.simulate import generated_rows

FEATURE_HEADER = (
    "Call  Failure,Complains,Subscription  Length,Charge  Amount,Seconds of Use,Frequency of use,"
    "Frequency of SMS,Distinct Called Numbers,Age Group,Tariff Plan,Status,Age,Customer Value,Churn"
)
FEATURES = "8,0,38,0,4370,71,5,17,3,1,1,30,197.64,0"


def test_a_batch_asked_for_ids_names_each_row_by_its_seed_and_row() -> None:
    # GIVEN the same batch twice and one of another seed, with ids
    batch = generate(n_rows=3, seed=563, with_customer_id=True)
    # THEN the ids come first, one per row, the same each time, and another seed names other customers
    assert list(batch.columns) == ["customer_id", *FEATURE_COLUMNS, LABEL_COLUMN]
    assert list(batch["customer_id"]) == ["C000563-00000001", "C000563-00000002", "C000563-00000003"]
    pd.testing.assert_frame_equal(batch, generate(n_rows=3, seed=563, with_customer_id=True))
    assert set(generate(n_rows=3, seed=564, with_customer_id=True)["customer_id"]).isdisjoint(batch["customer_id"])
    # AND the features are those of the same batch without ids
    pd.testing.assert_frame_equal(batch.drop(columns="customer_id"), generate(n_rows=3, seed=563))
    # AND every row is valid per the record contract
    assert all(CustomerRow.model_validate(values).customer_id for values in batch.to_dict("records"))


def test_the_simulators_generated_stream_carries_customer_ids() -> None:
    rows = [row for _, row in zip(range(5), generated_rows(seed=11, block_rows=3), strict=False)]
    assert [row.customer_id for row in rows] == [
        "C000011-00000001",
        "C000011-00000002",
        "C000011-00000003",
        "C000012-00000001",
        "C000012-00000002",
    ]


def test_ids_are_read_as_text_and_a_blank_one_is_none() -> None:
    # GIVEN a file in the dataset's format with an id column holding a numeric-looking id and a blank one
    text = f"Customer ID,{FEATURE_HEADER}\n00123,{FEATURES}\n,{FEATURES}\nC7,{FEATURES}\n"
    # WHEN read
    frame = read_churn_csv(io.StringIO(text))
    # THEN the ids are kept as written, first, and the features are typed as without them
    assert list(frame["customer_id"]) == ["00123", None, "C7"]
    assert list(frame.columns) == ["customer_id", *FEATURE_COLUMNS, LABEL_COLUMN]
    without_ids = read_churn_csv(io.StringIO(f"{FEATURE_HEADER}\n{FEATURES}\n{FEATURES}\n{FEATURES}\n"))
    pd.testing.assert_frame_equal(frame.drop(columns="customer_id"), without_ids)


def test_a_file_with_an_unusable_id_is_refused() -> None:
    with pytest.raises(ValueError, match="invalid customer ids in 1 rows"):
        read_churn_csv(io.StringIO(f"customer_id,{FEATURE_HEADER}\n{'x' * 65},{FEATURES}\n"))


def test_the_cli_writes_ids_when_asked_and_they_read_back(tmp_path: Path) -> None:
    # GIVEN the CLI asked for a batch with ids
    out = tmp_path / "customers.csv"
    assert main(["generate", "--rows", "20", "--seed", "4", "--customer-ids", "--out", str(out)]) == 0
    # THEN the file has the id column first and reads back as the API's batch
    assert out.read_text().startswith("customer_id,Call  Failure,")
    pd.testing.assert_frame_equal(read_churn_csv(out), generate(n_rows=20, seed=4, with_customer_id=True))


def test_a_frame_without_ids_is_written_as_before(tmp_path: Path) -> None:
    path = write_churn_csv(generate(n_rows=2, seed=1), tmp_path / "plain.csv", original_headers=True)
    assert path.read_text().startswith("Call  Failure,")
