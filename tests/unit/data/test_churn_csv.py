from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from churn_common.schema import FEATURE_COLUMNS, LABEL_COLUMN, normalise_header
from data.churn_csv import ORIGINAL_HEADERS, read_churn_csv, write_churn_csv
from data.dataset import TRAINING_FILE_NAME

ORIGINAL_HEADER_LINE = (
    "Call  Failure,Complains,Subscription  Length,Charge  Amount,Seconds of Use,Frequency of use,"
    "Frequency of SMS,Distinct Called Numbers,Age Group,Tariff Plan,Status,Age,Customer Value,Churn"
)


def test_every_original_header_normalises_to_its_schema_name() -> None:
    # GIVEN the original header names WHEN normalised THEN they are exactly the schema's columns, in order
    assert [normalise_header(h) for h in ORIGINAL_HEADERS.values()] == list(ORIGINAL_HEADERS)
    assert list(ORIGINAL_HEADERS) == [*FEATURE_COLUMNS, LABEL_COLUMN]


def test_written_original_header_line_matches_the_published_files(real_data_dir: Path, tmp_path: Path) -> None:
    # GIVEN a frame read from a published file
    published = real_data_dir / TRAINING_FILE_NAME
    frame = read_churn_csv(published)
    # WHEN written back with original headers
    written = write_churn_csv(frame, tmp_path / "out.csv", original_headers=True)
    # THEN the header line is byte-identical to the published one
    assert written.read_text().splitlines()[0] == published.read_text().splitlines()[0].lstrip("\ufeff")


def test_read_normalises_headers_orders_columns_and_types_values() -> None:
    # GIVEN a file with irregular headers, shuffled columns, an extra column and a BOM
    header = ORIGINAL_HEADER_LINE.split(",")
    shuffled = [header[-1], *reversed(header[:-1]), "Notes"]
    values = {"Customer Value": "197.64", "Churn": "1", "Notes": "x"}
    row = [values.get(h, "3") for h in shuffled]
    text = "\ufeff" + ",".join(f" {h.upper()} " for h in shuffled) + "\n" + ",".join(row) + "\n"
    # WHEN read
    frame = read_churn_csv(io.StringIO(text))
    # THEN columns are the features in schema order plus the label, with integer and float dtypes
    assert list(frame.columns) == [*FEATURE_COLUMNS, LABEL_COLUMN]
    assert frame.dtypes.drop("customer_value").eq("int64").all()
    assert frame["customer_value"].dtype == "float64"
    assert frame.loc[0, "customer_value"] == pytest.approx(197.64)
    assert frame.loc[0, "churn"] == 1


def test_label_is_optional(churn_frame: Callable[..., pd.DataFrame], csv_bytes: Callable[..., bytes]) -> None:
    # GIVEN a file without the churn column
    payload = csv_bytes(churn_frame(with_label=False))
    # WHEN read THEN only the 13 features come back
    assert list(read_churn_csv(io.BytesIO(payload)).columns) == list(FEATURE_COLUMNS)


def test_missing_feature_columns_are_named(
    churn_frame: Callable[..., pd.DataFrame], csv_bytes: Callable[..., bytes]
) -> None:
    # GIVEN a file without the Status and Age columns
    payload = csv_bytes(churn_frame().drop(columns=["status", "age"]))
    # WHEN read THEN the error names both
    with pytest.raises(ValueError, match=r"missing feature columns: status, age"):
        read_churn_csv(io.BytesIO(payload))


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("Seconds of Use", "12.5", "seconds_of_use must hold whole numbers"),
        ("Age", "old", "column age has missing or non-numeric values in 1 rows"),
        ("Customer Value", "", "column customer_value has missing or non-numeric values"),
    ],
)
def test_bad_values_are_reported_with_their_column(column: str, value: str, message: str) -> None:
    # GIVEN one row whose value in one column does not fit the column's type
    header = ORIGINAL_HEADER_LINE.split(",")
    row = [value if h == column else "1" for h in header]
    # WHEN read THEN the error names the column
    with pytest.raises(ValueError, match=message):
        read_churn_csv(io.StringIO(",".join(header) + "\n" + ",".join(row) + "\n"))


@pytest.mark.parametrize("original_headers", [True, False])
def test_write_then_read_round_trips(
    churn_frame: Callable[..., pd.DataFrame], tmp_path: Path, *, original_headers: bool
) -> None:
    # GIVEN a typed frame
    frame = churn_frame()
    # WHEN written with either header style and read back
    path = write_churn_csv(frame, tmp_path / "f.csv", original_headers=original_headers)
    # THEN the header style is as asked and the data is unchanged
    expected = ORIGINAL_HEADER_LINE if original_headers else ",".join([*FEATURE_COLUMNS, LABEL_COLUMN])
    assert path.read_text().splitlines()[0] == expected
    pd.testing.assert_frame_equal(read_churn_csv(path), frame)


def test_write_refuses_a_frame_without_all_features(churn_frame: Callable[..., pd.DataFrame], tmp_path: Path) -> None:
    # GIVEN a frame missing a feature WHEN written THEN the error names it and no file appears
    with pytest.raises(ValueError, match="tariff_plan"):
        write_churn_csv(churn_frame().drop(columns="tariff_plan"), tmp_path / "f.csv", original_headers=True)
    assert not (tmp_path / "f.csv").exists()
