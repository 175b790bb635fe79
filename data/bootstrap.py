"""New rows resampled from existing ones, for batches that must look exactly like a given dataset.

Whole rows are drawn, so every dependency between columns (and with the label) is kept; a small
multiplicative jitter on the continuous columns avoids shipping exact copies of the base rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from churn_common.schema import FEATURE_COLUMNS, LABEL_COLUMN

JITTERED_COLUMNS: tuple[str, ...] = (
    "call_failure",
    "subscription_length",
    "seconds_of_use",
    "frequency_of_use",
    "frequency_of_sms",
    "distinct_called_numbers",
    "customer_value",
)
JITTER_SIGMA = 0.05


def resample(base: pd.DataFrame, *, n_rows: int, rng: np.random.Generator) -> pd.DataFrame:
    """``n_rows`` rows drawn with replacement from ``base``; zeros stay zeros, values move by about 5%."""
    missing = [c for c in FEATURE_COLUMNS if c not in base.columns]
    if missing:
        raise ValueError(f"base data is missing feature columns: {', '.join(missing)}")
    if base.empty:
        raise ValueError("base data has no rows to resample")
    columns = [c for c in (*FEATURE_COLUMNS, LABEL_COLUMN) if c in base.columns]
    rows = base[columns].iloc[rng.integers(0, len(base), n_rows)].reset_index(drop=True)
    for column in JITTERED_COLUMNS:
        rows[column] = rows[column] * np.exp(JITTER_SIGMA * rng.standard_normal(n_rows))
    return rows
