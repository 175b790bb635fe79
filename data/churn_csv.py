"""The dataset's CSV format: irregular original headers outside, normalised names and exact dtypes inside.

A file may also carry a ``customer_id`` column (the published dataset has none): it is read as text, never as a
number (``00123`` stays ``00123``), and a blank cell is no id (``None``).
"""

from __future__ import annotations

from collections.abc import Mapping
from os import PathLike
from pathlib import Path
from typing import IO, Any

import pandas as pd
from pydantic import TypeAdapter, ValidationError

from churn_common.schema import (
    CUSTOMER_ID_COLUMN,
    CUSTOMER_ID_TYPE,
    DECIMAL_COLUMNS,
    FEATURE_COLUMNS,
    LABEL_COLUMN,
    normalise_header,
)

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
_CUSTOMER_ID: TypeAdapter[Any] = TypeAdapter(CUSTOMER_ID_TYPE)


def read_churn_csv(path_or_buffer: CsvSource) -> pd.DataFrame:
    """Read a file in the dataset's format; everything downstream relies on the column order and dtypes."""
    raw = pd.read_csv(path_or_buffer, dtype=dict.fromkeys(_customer_id_headers(path_or_buffer), str))
    raw.columns = [normalise_header(str(c)) for c in raw.columns]
    duplicated = sorted({c for c in raw.columns if list(raw.columns).count(c) > 1})
    if duplicated:
        raise ValueError(f"columns appear more than once after header normalisation: {', '.join(duplicated)}")
    missing = [c for c in FEATURE_COLUMNS if c not in raw.columns]
    if missing:
        raise ValueError(f"missing feature columns: {', '.join(missing)}")
    columns = [*FEATURE_COLUMNS, LABEL_COLUMN] if LABEL_COLUMN in raw.columns else list(FEATURE_COLUMNS)
    typed = pd.DataFrame({c: _typed(raw[c]) for c in columns})
    if CUSTOMER_ID_COLUMN in raw.columns:
        typed.insert(0, CUSTOMER_ID_COLUMN, _customer_ids(raw[CUSTOMER_ID_COLUMN]))
    return typed


def write_churn_csv(df: pd.DataFrame, path: str | PathLike[str], *, original_headers: bool) -> Path:
    """Write in the dataset's column order; original headers reproduce the published files' irregular names."""
    columns = [c for c in (CUSTOMER_ID_COLUMN, *FEATURE_COLUMNS, LABEL_COLUMN) if c in df.columns]
    missing = [c for c in FEATURE_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"missing feature columns: {', '.join(missing)}")
    out = df[columns]
    if original_headers:
        out = out.rename(columns=dict(ORIGINAL_HEADERS))
    target = Path(path)
    out.to_csv(target, index=False, lineterminator=LINE_TERMINATOR)
    return target


def _customer_id_headers(source: CsvSource) -> list[str]:
    """The header names that normalise to ``customer_id``, read ahead so pandas never parses ids as numbers; a
    stream that cannot be rewound is not read ahead (its ids are then as pandas reads them)."""
    if not isinstance(source, str | PathLike):
        if not (getattr(source, "seekable", None) and source.seekable()):
            return []
        position = source.tell()
        names = pd.read_csv(source, nrows=0).columns
        source.seek(position)
    else:
        names = pd.read_csv(source, nrows=0).columns
    return [str(name) for name in names if normalise_header(str(name)) == CUSTOMER_ID_COLUMN]


def _customer_ids(column: pd.Series) -> pd.Series:
    values = [None if pd.isna(value) else str(value).strip() or None for value in column]
    bad = 0
    for value in values:
        if value is not None:
            try:
                _CUSTOMER_ID.validate_python(value)
            except ValidationError:
                bad += 1
    if bad:
        raise ValueError(f"column {CUSTOMER_ID_COLUMN} has invalid customer ids in {bad} rows")
    return pd.Series(values, index=column.index, dtype="object", name=CUSTOMER_ID_COLUMN)


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
