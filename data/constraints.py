"""The schema's value rules applied to whole frames, so generated data can never be rejected downstream.

Bounds are read from :mod:`churn_common.schema` rather than restated, so a change there reaches the generator.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pydantic import ValidationError

from churn_common.schema import (
    CUSTOMER_ID_COLUMN,
    DECIMAL_COLUMNS,
    FEATURE_COLUMNS,
    LABEL_COLUMN,
    CustomerFeatures,
    CustomerRow,
)

# The dataset only uses these five ages, one per age group.
AGES_BY_GROUP: Mapping[int, int] = {1: 15, 2: 25, 3: 30, 4: 45, 5: 55}
_AGE_GROUP_EDGES = np.array([20, 27.5, 37.5, 50])
MONEY_DECIMALS = 3


@dataclass(frozen=True)
class Bounds:
    lower: float | None
    upper: float | None


@dataclass(frozen=True)
class RowError:
    row: int
    message: str


def column_bounds() -> dict[str, Bounds]:
    """The inclusive range of every feature as declared in the schema (``None`` when open)."""
    bounds: dict[str, Bounds] = {}
    for name in FEATURE_COLUMNS:
        metadata = CustomerFeatures.model_fields[name].metadata
        lower = next((m.ge for m in metadata if hasattr(m, "ge")), None)
        upper = next((m.le for m in metadata if hasattr(m, "le")), None)
        bounds[name] = Bounds(lower, upper)
    return bounds


def age_group_of(ages: pd.Series) -> pd.Series:
    """Age group implied by the age, so the two columns never contradict each other."""
    groups = np.searchsorted(_AGE_GROUP_EDGES, ages.to_numpy(), side="right") + 1
    return pd.Series(groups, index=ages.index, name="age_group", dtype="int64")


def clip_to_schema(features: pd.DataFrame) -> pd.DataFrame:
    """Clip every feature into its range and cast to the dataset's dtypes (integers, money rounded)."""
    out = features.copy()
    for name, bound in column_bounds().items():
        values = out[name].astype("float64").clip(lower=bound.lower, upper=bound.upper)
        if name in DECIMAL_COLUMNS:
            out[name] = values.round(MONEY_DECIMALS)
        else:
            out[name] = values.round().astype("int64")
    return out


def invalid_rows(df: pd.DataFrame) -> list[RowError]:
    """Rows that the pipeline's own row model would reject, with the reason, in file order."""
    model = CustomerRow if {LABEL_COLUMN, CUSTOMER_ID_COLUMN} & set(df.columns) else CustomerFeatures
    errors: list[RowError] = []
    for position, record in enumerate(df.to_dict("records")):
        try:
            model.model_validate(record)
        except ValidationError as exc:
            reasons = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            errors.append(RowError(position, reasons))
    return errors
