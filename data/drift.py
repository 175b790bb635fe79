"""Controlled distribution shifts and label noise, to produce batches that the monitor must flag.

Strength is in units of "clearly visible": 1.0 moves a numeric column by about one standard deviation
and moves about half of a categorical column's majority to other categories; for numeric and ordinal
columns the sign gives the direction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from churn_common.schema import FEATURE_COLUMNS
from data.constraints import AGES_BY_GROUP, age_group_of, column_bounds

NOMINAL_COLUMNS: tuple[str, ...] = ("complains", "tariff_plan", "status")
ORDINAL_COLUMNS: tuple[str, ...] = ("charge_amount",)
AGE_COLUMNS: tuple[str, ...] = ("age", "age_group")
SCALED_COLUMNS: tuple[str, ...] = tuple(
    c for c in FEATURE_COLUMNS if c not in (*NOMINAL_COLUMNS, *ORDINAL_COLUMNS, *AGE_COLUMNS)
)
# Left out so that a "strong" batch still looks like a plausible mix of moved and unmoved columns.
STRONG_DRIFT_COLUMNS: tuple[str, ...] = (
    "call_failure",
    "subscription_length",
    "charge_amount",
    "seconds_of_use",
    "frequency_of_use",
    "frequency_of_sms",
    "distinct_called_numbers",
    "status",
    "age",
    "customer_value",
)
DEFAULT_STRENGTH = 1.0
STD_SHIFT_PER_STRENGTH = 1.0
MOVED_SHARE_PER_STRENGTH = 0.5


def strong_drift(columns: Iterable[str] | None = None, strength: float = DEFAULT_STRENGTH) -> dict[str, float]:
    """A drift specification moving most columns at once, which must trip the dataset-drift alert."""
    chosen = STRONG_DRIFT_COLUMNS if columns is None else tuple(columns)
    check_drift_columns(chosen)
    return dict.fromkeys(chosen, strength)


def check_drift_columns(columns: Iterable[str]) -> None:
    unknown = sorted(set(columns) - set(FEATURE_COLUMNS))
    if unknown:
        raise ValueError(f"cannot drift unknown columns: {', '.join(unknown)}")


def apply_drift(features: pd.DataFrame, drift: Mapping[str, float], *, rng: np.random.Generator) -> pd.DataFrame:
    """Shift the named columns; age and age group move together so they stay consistent."""
    check_drift_columns(drift)
    out = features.copy()
    for column in sorted(drift):
        strength = float(drift[column])
        if strength == 0 or (column == "age_group" and "age" in drift):
            continue
        if column in NOMINAL_COLUMNS:
            out[column] = _move_majority(out[column], strength=strength, rng=rng)
        elif column in ORDINAL_COLUMNS:
            out[column] = _shift_ordinal(out[column], strength=strength, rng=rng)
        elif column in AGE_COLUMNS:
            out["age"] = _shift_age(out["age"], strength=strength, rng=rng)
            out["age_group"] = age_group_of(out["age"])
        else:
            out[column] = _scale(out[column], strength=strength)
    return out


def flip_labels(labels: pd.Series, *, fraction: float, rng: np.random.Generator) -> pd.Series:
    """Flip exactly ``round(fraction * n)`` labels, chosen at random: a concept change with no feature change."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"label noise must be a fraction between 0 and 1, got {fraction}")
    flipped = labels.to_numpy().copy()
    chosen = rng.choice(len(flipped), size=round(fraction * len(flipped)), replace=False)
    flipped[chosen] = 1 - flipped[chosen]
    return pd.Series(flipped, index=labels.index, name=labels.name)


def _scale(values: pd.Series, *, strength: float) -> pd.Series:
    """Multiplicative, so zero-inflated counts keep their zeros while the mean moves by ~strength std."""
    mean, std = float(values.mean()), float(values.std(ddof=0))
    if mean <= 0:
        return values + strength * max(std, 1.0)
    factor = (1.0 + abs(strength) * STD_SHIFT_PER_STRENGTH * std / mean) ** np.sign(strength)
    return values * factor


def _shift_ordinal(values: pd.Series, *, strength: float, rng: np.random.Generator) -> pd.Series:
    # Stochastic rounding makes the shift grow smoothly with strength instead of in whole steps.
    shift = strength * STD_SHIFT_PER_STRENGTH * max(float(values.std(ddof=0)), 1.0)
    bounds = column_bounds()[str(values.name)]
    shifted = np.floor(values.to_numpy() + shift + rng.random(len(values)))
    return pd.Series(shifted, index=values.index, name=values.name).clip(bounds.lower, bounds.upper)


def _shift_age(ages: pd.Series, *, strength: float, rng: np.random.Generator) -> pd.Series:
    """Ages move between the dataset's five ages (one age group per step)."""
    known = np.array(sorted(AGES_BY_GROUP.values()))
    steps = age_group_of(ages).to_numpy() - 1
    shift = strength * STD_SHIFT_PER_STRENGTH * max(float(np.std(steps)), 1.0)
    moved = np.clip(np.floor(steps + shift + rng.random(len(steps))), 0, len(known) - 1).astype(int)
    return pd.Series(known[moved], index=ages.index, name="age")


def _move_majority(values: pd.Series, *, strength: float, rng: np.random.Generator) -> pd.Series:
    """Move a share of the most frequent category to the others, flattening (or inverting) the balance."""
    bounds = column_bounds()[str(values.name)]
    domain = np.arange(int(bounds.lower), int(bounds.upper) + 1)
    majority = values.mode().iloc[0]
    others = domain[domain != majority]
    share = min(1.0, abs(strength) * MOVED_SHARE_PER_STRENGTH)
    moving = (values.to_numpy() == majority) & (rng.random(len(values)) < share)
    out = values.to_numpy().copy()
    out[moving] = rng.choice(others, size=int(moving.sum()))
    return pd.Series(out, index=values.index, name=values.name)
