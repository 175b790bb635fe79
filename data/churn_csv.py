"""The dataset's CSV format: irregular original headers outside, normalised names and exact dtypes inside."""

from __future__ import annotations

from collections.abc import Mapping
from os import PathLike
from pathlib import Path
from typing import IO

import pandas as pd

from churn_common.schema import DECIMAL_COLUMNS, FEATURE_COLUMNS, LABEL_COLUMN, normalise_header

# Exactly as in the published dataset, double spaces included: files in this form must keep working.
ORIGINAL_HEADERS: Mapping[str, str] = {
    "call_failure": "Call  Failure",
    "complains": "Complains",
    "subscription_length": "Subscription  Length",
    "charge_amount": "Charge  Amount",
    "seconds_of_use": "Seconds of Use",
    "frequency_of_use": "Frequency of use",
    "frequency_of_sms": "Frequency of SMS",
    "distinct_called_numbers": "Distinct Called Numbers",
    "age_group": "Age Group",
    "tariff_plan": "Tariff Plan",
    "status": "Status",
    "age": "Age",
    "customer_value": "Customer Value",
    LABEL_COLUMN: "Churn",
}
FLOAT_COLUMNS: tuple[str, ...] = DECIMAL_COLUMNS
INTEGER_COLUMNS: tuple[str, ...] = tuple(c for c in (*FEATURE_COLUMNS, LABEL_COLUMN) if c not in FLOAT_COLUMNS)
LINE_TERMINATOR = "\n"

CsvSource = str | PathLike[str] | IO[str] | IO[bytes]


def read_churn_csv(path_or_buffer: CsvSource) -> pd.DataFrame:
    """Read a file in the dataset's format; everything downstream relies on the column order and dtypes."""
    raw = pd.read_csv(path_or_buffer)
    raw.columns = [normalise_header(str(c)) for c in raw.columns]
    duplicated = sorted({c for c in raw.columns if list(raw.columns).count(c) > 1})
    if duplicated:
        raise ValueError(f"columns appear more than once after header normalisation: {', '.join(duplicated)}")
    missing = [c for c in FEATURE_COLUMNS if c not in raw.columns]
    if missing:
        raise ValueError(f"missing feature columns: {', '.join(missing)}")
    columns = [*FEATURE_COLUMNS, LABEL_COLUMN] if LABEL_COLUMN in raw.columns else list(FEATURE_COLUMNS)
    return pd.DataFrame({c: _typed(raw[c]) for c in columns})


def write_churn_csv(df: pd.DataFrame, path: str | PathLike[str], *, original_headers: bool) -> Path:
    """Write in the dataset's column order; original headers reproduce the published files' irregular names."""
    columns = [c for c in (*FEATURE_COLUMNS, LABEL_COLUMN) if c in df.columns]
    missing = [c for c in FEATURE_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"missing feature columns: {', '.join(missing)}")
    out = df[columns]
    if original_headers:
        out = out.rename(columns=dict(ORIGINAL_HEADERS))
    target = Path(path)
    out.to_csv(target, index=False, lineterminator=LINE_TERMINATOR)
    return target


def _typed(column: pd.Series) -> pd.Series:
    values = pd.to_numeric(column, errors="coerce")
    bad = values.isna()
    if bad.any():
        raise ValueError(f"column {column.name} has missing or non-numeric values in {int(bad.sum())} rows")
    if column.name in FLOAT_COLUMNS:
        return values.astype("float64")
    if (values != values.round()).any():
        raise ValueError(f"column {column.name} must hold whole numbers")
    return values.astype("int64")
