from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from churn_common.schema import FEATURE_COLUMNS, PERIOD_SECONDS
from data.constraints import AGES_BY_GROUP, age_group_of, clip_to_schema, column_bounds, invalid_rows


def test_bounds_come_from_the_schema() -> None:
    # GIVEN the schema WHEN bounds are read THEN every feature has one, with the declared limits
    bounds = column_bounds()
    assert set(bounds) == set(FEATURE_COLUMNS)
    assert (bounds["charge_amount"].lower, bounds["charge_amount"].upper) == (0, 10)
    assert (bounds["seconds_of_use"].lower, bounds["seconds_of_use"].upper) == (0, PERIOD_SECONDS)


def test_each_dataset_age_maps_to_its_own_group() -> None:
    # GIVEN the five ages of the dataset WHEN grouped THEN groups are 1..5 in order
    ages = pd.Series(list(AGES_BY_GROUP.values()))
    assert age_group_of(ages).tolist() == list(AGES_BY_GROUP)


def test_clipping_brings_any_frame_into_the_schema(churn_frame: Callable[..., pd.DataFrame]) -> None:
    # GIVEN features pushed outside every range, with fractional values
    wild = churn_frame(n_rows=50, with_label=False).astype(float)
    wild.iloc[::2] = -3.7
    wild.iloc[1::2] = 1e6 + 0.4
    assert invalid_rows(wild)
    # WHEN clipped THEN no row is invalid and counts are integers again
    clipped = clip_to_schema(wild)
    assert invalid_rows(clipped) == []
    assert clipped.dtypes.drop("customer_value").eq("int64").all()


def test_invalid_rows_are_reported_by_position_and_field(churn_frame: Callable[..., pd.DataFrame]) -> None:
    # GIVEN rows 1 and 3 out of range
    frame = churn_frame(n_rows=5)
    frame.loc[1, "charge_amount"] = 11
    frame.loc[3, "churn"] = 2
    # WHEN validated THEN exactly those rows are reported, naming the field
    errors = invalid_rows(frame)
    assert [e.row for e in errors] == [1, 3]
    assert "charge_amount" in errors[0].message
    assert "churn" in errors[1].message
