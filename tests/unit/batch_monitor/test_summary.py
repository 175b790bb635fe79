"""Quantile summaries keep every column's distribution, to within (max - min) / points."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import wasserstein_distance

from batch_monitor.evaluation.summary import quantile_summary


@pytest.fixture
def window() -> pd.DataFrame:
    """200,000 rows: a heavy-tailed amount, a skewed count and a five-valued code, like the churn columns."""
    rng = np.random.default_rng(11)
    n = 200_000
    return pd.DataFrame(
        {
            "amount": rng.lognormal(mean=5, sigma=1.2, size=n),
            "count": rng.poisson(3, size=n),
            "group": rng.choice([1, 2, 3, 4, 5], p=[0.1, 0.2, 0.4, 0.2, 0.1], size=n),
        }
    )


@pytest.mark.parametrize("points", [1_000, 20_000])
def test_each_column_keeps_its_distribution(window: pd.DataFrame, points: int) -> None:
    # WHEN summarised
    summary = quantile_summary(window, points=points, columns=list(window.columns))
    # THEN it has `points` rows, and each column is within the bound of the full column in Wasserstein distance
    assert len(summary) == points
    for column in window.columns:
        full = window[column].to_numpy(dtype=float)
        bound = (full.max() - full.min()) / points
        assert wasserstein_distance(full, summary[column]) <= bound, column


def test_a_few_valued_column_keeps_its_shares_to_one_point(window: pd.DataFrame) -> None:
    summary = quantile_summary(window, points=1_000, columns=["group"])
    shares = summary["group"].value_counts(normalize=True).sort_index()
    expected = window["group"].value_counts(normalize=True).sort_index()
    assert (shares - expected).abs().max() <= 1 / 1_000


def test_values_are_values_of_the_data(window: pd.DataFrame) -> None:
    summary = quantile_summary(window, points=500, columns=["count"])
    assert set(summary["count"]) <= set(window["count"].astype(float))


def test_rows_show_no_trend_over_their_order_and_the_order_is_the_same_every_time(window: pd.DataFrame) -> None:
    # WHEN summarised twice
    summary = quantile_summary(window, points=2_000, columns=["amount"])
    again = quantile_summary(window, points=2_000, columns=["amount"])
    # THEN the rows are in one fixed order, in which the values do not climb (sorted, they would)
    pd.testing.assert_frame_equal(summary, again)
    halves = np.array_split(summary["amount"].to_numpy(), 2)
    assert abs(np.median(halves[0]) - np.median(halves[1])) < 0.1 * np.median(summary["amount"])
    assert abs(np.corrcoef(np.arange(len(summary)), summary["amount"])[0, 1]) < 0.1


@pytest.mark.parametrize(
    ("frame", "points", "message"),
    [(pd.DataFrame({"a": [1.0]}), 0, "at least one point"), (pd.DataFrame({"a": []}), 10, "empty frame")],
)
def test_nonsense_is_refused(frame: pd.DataFrame, points: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        quantile_summary(frame, points=points, columns=["a"])
