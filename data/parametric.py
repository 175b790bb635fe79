"""Churn-like customers from chosen parameters, for when no real data may be used or shipped.

Each column's marginal is drawn on its own (skewed, zero-inflated where the real data is), then the draws
are ordered by a latent Gaussian score built from a few shared factors ("usage", "messaging", "spend",
"dissatisfaction"). Ordering by rank keeps the marginals exact while giving the columns the dependencies
a churn model learns from. The parameters are hand-picked to resemble the public dataset's summary
statistics; no real rows are involved.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from churn_common.schema import FEATURE_COLUMNS, LABEL_COLUMN
from data.constraints import AGES_BY_GROUP, age_group_of, clip_to_schema

FACTORS: tuple[str, ...] = ("usage", "messaging", "spend", "dissatisfaction")
# Higher latent score -> higher value (or the later category); status 2 means non-active.
LOADINGS: Mapping[str, Mapping[str, float]] = {
    "seconds_of_use": {"usage": 0.97},
    "distinct_called_numbers": {"usage": 0.8},
    "call_failure": {"usage": 0.55, "spend": 0.45, "dissatisfaction": 0.15},
    "charge_amount": {"usage": 0.35, "spend": 0.75},
    "tariff_plan": {"spend": 0.55, "usage": 0.1},
    "frequency_of_sms": {"messaging": 0.9, "usage": 0.1},
    "status": {"usage": -0.5, "messaging": -0.35, "dissatisfaction": 0.3},
    "complains": {"dissatisfaction": 0.65, "usage": -0.1},
    "subscription_length": {"usage": 0.15, "spend": -0.1},
    "age": {"spend": 0.35, "messaging": -0.2},
}


@dataclass(frozen=True)
class Skewed:
    """A gamma marginal redrawn above ``upper``: the real columns are skewed but bounded.

    With a share of exact zeros the positive part is rounded up, so zero keeps its own meaning.
    """

    shape: float
    scale: float
    upper: float
    zero_share: float | None = None


SECONDS = Skewed(shape=1.4, scale=3300.0, upper=17500.0)
DISTINCT_NUMBERS = Skewed(shape=2.0, scale=12.5, upper=97.0)
CALL_FAILURES = Skewed(shape=1.6, scale=6.0, upper=36.0, zero_share=0.18)
SMS = Skewed(shape=0.7, scale=125.0, upper=530.0, zero_share=0.15)

DORMANT_SHARE = 0.05
DORMANT_NON_ACTIVE_SHARE = 0.8
DORMANT_SMS_SHARE = 0.1
DORMANT_SMS_MAX = 25

CALL_SECONDS_MEDIAN, CALL_SECONDS_SIGMA = 62.0, 0.35
SUBSCRIPTION_MIN, SUBSCRIPTION_SPAN, SUBSCRIPTION_A, SUBSCRIPTION_B = 3, 44, 3.2, 1.6
CHARGE_AMOUNT_PROBABILITIES = (0.56, 0.2, 0.125, 0.063, 0.024, 0.01, 0.005, 0.004, 0.005, 0.004)
AGE_GROUP_PROBABILITIES = (0.04, 0.33, 0.45, 0.125, 0.055)
TARIFF_CONTRACT_SHARE = 0.078
NON_ACTIVE_SHARE = 0.21
COMPLAIN_SHARE = 0.075

VALUE_PER_SMS, VALUE_PER_SECOND, VALUE_NOISE_SIGMA = 4.0, 0.045, 0.12
VALUE_FACTOR_BY_AGE: Mapping[int, float] = {15: 1.2, 25: 1.1, 30: 1.0, 45: 0.6, 55: 0.4}

# Churn log-odds: complaints and inactivity dominate, heavy users and long-standing customers stay.
CHURN_INTERCEPT = -8.8
CHURN_COMPLAINS = 10.0
CHURN_NON_ACTIVE = 6.0
CHURN_USAGE = -4.0
CHURN_VALUE = -2.0
CHURN_CALL_FAILURE = 0.16
CHURN_SUBSCRIPTION = -0.16
CHURN_CONTRACT = -4.0
USAGE_LOG_CENTRE, USAGE_LOG_SCALE = 7.9, 1.0
VALUE_LOG_CENTRE, VALUE_LOG_SCALE = 5.5, 1.2
CALL_FAILURE_CENTRE, SUBSCRIPTION_CENTRE = 7.0, 32.0


def sample_features(*, n_rows: int, rng: np.random.Generator) -> pd.DataFrame:
    """``n_rows`` customers with all 13 features, valid per the schema."""
    factors = {name: rng.standard_normal(n_rows) for name in FACTORS}
    scores = {column: _latent(loadings, factors, rng) for column, loadings in LOADINGS.items()}
    dormant = np.argsort(factors["usage"])[: round(DORMANT_SHARE * n_rows)]

    seconds = _by_rank(_draw(rng, n_rows, SECONDS), scores["seconds_of_use"])
    call_seconds = CALL_SECONDS_MEDIAN * np.exp(CALL_SECONDS_SIGMA * rng.standard_normal(n_rows))
    calls = np.maximum(1, np.round(seconds / call_seconds))
    distinct = _by_rank(_draw(rng, n_rows, DISTINCT_NUMBERS), scores["distinct_called_numbers"])
    call_failure = _by_rank(_draw(rng, n_rows, CALL_FAILURES), scores["call_failure"])
    sms = _by_rank(_draw(rng, n_rows, SMS), scores["frequency_of_sms"])
    subscription = SUBSCRIPTION_MIN + SUBSCRIPTION_SPAN * rng.beta(SUBSCRIPTION_A, SUBSCRIPTION_B, n_rows)
    ages = np.array([AGES_BY_GROUP[g] for g in sorted(AGES_BY_GROUP)])

    features = pd.DataFrame(
        {
            "call_failure": call_failure,
            "complains": _categories(rng, (1 - COMPLAIN_SHARE, COMPLAIN_SHARE), scores["complains"], start=0),
            "subscription_length": _by_rank(subscription, scores["subscription_length"]),
            "charge_amount": _categories(rng, CHARGE_AMOUNT_PROBABILITIES, scores["charge_amount"], start=0),
            "seconds_of_use": np.round(seconds),
            "frequency_of_use": calls,
            "frequency_of_sms": sms,
            "distinct_called_numbers": np.clip(np.round(distinct), 1, calls),
            "tariff_plan": _categories(
                rng, (1 - TARIFF_CONTRACT_SHARE, TARIFF_CONTRACT_SHARE), scores["tariff_plan"], start=1
            ),
            "status": _categories(rng, (1 - NON_ACTIVE_SHARE, NON_ACTIVE_SHARE), scores["status"], start=1),
            "age": ages[_categories(rng, AGE_GROUP_PROBABILITIES, scores["age"], start=0)],
        }
    )
    _make_dormant(features, dormant, rng)
    features["age_group"] = age_group_of(features["age"])
    features["customer_value"] = _customer_value(features, rng)
    return clip_to_schema(features[list(FEATURE_COLUMNS)])


def churn_labels(features: pd.DataFrame, *, rng: np.random.Generator) -> pd.Series:
    """Labels drawn from the observable features only, so a model can learn them (about 15% churn)."""
    usage = (np.log1p(features["seconds_of_use"]) - USAGE_LOG_CENTRE) / USAGE_LOG_SCALE
    value = (np.log1p(features["customer_value"]) - VALUE_LOG_CENTRE) / VALUE_LOG_SCALE
    log_odds = (
        CHURN_INTERCEPT
        + CHURN_COMPLAINS * features["complains"]
        + CHURN_NON_ACTIVE * (features["status"] == 2)
        + CHURN_USAGE * usage
        + CHURN_VALUE * value
        + CHURN_CALL_FAILURE * (features["call_failure"] - CALL_FAILURE_CENTRE)
        + CHURN_SUBSCRIPTION * (features["subscription_length"] - SUBSCRIPTION_CENTRE)
        + CHURN_CONTRACT * (features["tariff_plan"] == 2)
    )
    probability = 1.0 / (1.0 + np.exp(-log_odds.to_numpy(dtype=float)))
    churned = (rng.random(len(features)) < probability).astype("int64")
    return pd.Series(churned, index=features.index, name=LABEL_COLUMN)


def _latent(loadings: Mapping[str, float], factors: Mapping[str, np.ndarray], rng: np.random.Generator) -> np.ndarray:
    shared = sum(weight * factors[name] for name, weight in loadings.items())
    own = np.sqrt(max(0.0, 1.0 - sum(w * w for w in loadings.values())))
    return shared + own * rng.standard_normal(len(factors[FACTORS[0]]))


def _by_rank(values: np.ndarray, score: np.ndarray) -> np.ndarray:
    """The i-th smallest value goes to the row with the i-th smallest score."""
    out = np.empty_like(values, dtype=float)
    out[np.argsort(score)] = np.sort(values)
    return out


def _categories(
    rng: np.random.Generator, probabilities: tuple[float, ...], score: np.ndarray, *, start: int
) -> np.ndarray:
    weights = np.asarray(probabilities) / sum(probabilities)
    drawn = rng.choice(np.arange(start, start + len(weights)), size=len(score), p=weights)
    return _by_rank(drawn, score).astype(int)


def _draw(rng: np.random.Generator, n_rows: int, marginal: Skewed) -> np.ndarray:
    values = rng.gamma(marginal.shape, marginal.scale, n_rows)
    while (too_high := values > marginal.upper).any():
        values[too_high] = rng.gamma(marginal.shape, marginal.scale, int(too_high.sum()))
    if marginal.zero_share is None:
        return values
    return np.where(rng.random(n_rows) < marginal.zero_share, 0.0, np.ceil(values))


def _make_dormant(features: pd.DataFrame, rows: np.ndarray, rng: np.random.Generator) -> None:
    """A few customers have no calls at all: mostly non-active, on the cheapest plan, almost no SMS."""
    for column in ("call_failure", "seconds_of_use", "frequency_of_use", "distinct_called_numbers", "charge_amount"):
        features.loc[rows, column] = 0
    features.loc[rows, "tariff_plan"] = 1
    features.loc[rows, "status"] = np.where(rng.random(len(rows)) < DORMANT_NON_ACTIVE_SHARE, 2, 1)
    texting = rng.random(len(rows)) < DORMANT_SMS_SHARE
    features.loc[rows, "frequency_of_sms"] = np.where(texting, rng.integers(1, DORMANT_SMS_MAX + 1, len(rows)), 0)


def _customer_value(features: pd.DataFrame, rng: np.random.Generator) -> np.ndarray:
    """Value follows revenue: SMS and airtime, discounted for older customers, with a little noise."""
    revenue = VALUE_PER_SMS * features["frequency_of_sms"] + VALUE_PER_SECOND * features["seconds_of_use"]
    factor = features["age"].map(VALUE_FACTOR_BY_AGE).fillna(1.0)
    noise = np.exp(VALUE_NOISE_SIGMA * rng.standard_normal(len(features)))
    return (revenue * factor * noise).to_numpy(dtype=float)
