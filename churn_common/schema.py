"""The customer record: column names, value constraints and header normalisation.

The constraints live in one place (the annotated types below) and are used both by the producer's
row model and by the scorer's wire-record validator, so the two can never disagree.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

FEATURE_COLUMNS: tuple[str, ...] = (
    "call_failure",
    "complains",
    "subscription_length",
    "charge_amount",
    "seconds_of_use",
    "frequency_of_use",
    "frequency_of_sms",
    "distinct_called_numbers",
    "age_group",
    "tariff_plan",
    "status",
    "age",
    "customer_value",
)
LABEL_COLUMN = "churn"
CATEGORICAL_COLUMNS: tuple[str, ...] = ("complains", "charge_amount", "age_group", "tariff_plan", "status")
NUMERICAL_COLUMNS: tuple[str, ...] = tuple(c for c in FEATURE_COLUMNS if c not in CATEGORICAL_COLUMNS)

MAX_COUNT = 2**31 - 1  # the INTEGER columns that store the counts
Count = Annotated[int, Field(ge=0, le=MAX_COUNT)]
Binary = Annotated[int, Field(ge=0, le=1)]
ChargeAmount = Annotated[int, Field(ge=0, le=10)]  # documented 0..9; the published data holds 10
AgeGroup = Annotated[int, Field(ge=1, le=5)]
OneOrTwo = Annotated[int, Field(ge=1, le=2)]
Age = Annotated[int, Field(ge=0, le=120)]
Money = Annotated[float, Field(ge=0, allow_inf_nan=False)]

_SPACES = re.compile(r"\s+")


def normalise_header(name: str) -> str:
    """``"Call  Failure"`` -> ``"call_failure"``: the source files use irregular spacing and case."""
    return _SPACES.sub(" ", name.replace("\ufeff", "").strip().lower()).replace(" ", "_")


class CustomerFeatures(BaseModel):
    """The 13 model inputs of one customer."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    call_failure: Count
    complains: Binary
    subscription_length: Count
    charge_amount: ChargeAmount
    seconds_of_use: Count
    frequency_of_use: Count
    frequency_of_sms: Count
    distinct_called_numbers: Count
    age_group: AgeGroup
    tariff_plan: OneOrTwo
    status: OneOrTwo
    age: Age
    customer_value: Money


class CustomerRow(CustomerFeatures):
    """One CSV row after header normalisation; the label is optional (live streams carry none)."""

    churn: Binary | None = None
