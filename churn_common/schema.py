"""The customer record: column names, value constraints and header normalisation.

The constraints live in one place (the annotated types below) and are used both by the producer's
row model and by the scorer's wire-record validator, so the two can never disagree.

Every feature is bounded by what can physically happen, generously, so that a value that passes can
neither overflow its column nor swamp a window's statistics (a single ``1e308`` made a drift score of
``2.6e+301``). The dataset aggregates each customer's first 9 months of usage; the counts are bounded by
one event per second over that period, which no phone line comes near (the real data peaks at 17,090
seconds, 255 calls and 522 SMS).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any, get_args, get_origin, get_type_hints

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

PERIOD_SECONDS = 9 * 31 * 86_400  # the 9 months the dataset aggregates, at 31 days each: 24,105,600
MAX_AGE = 120
MAX_SUBSCRIPTION_MONTHS = MAX_AGE * 12  # no subscription outlives its holder
# A score whose formula the dataset does not give; in the real data it tracks usage (about 4 per SMS, 0.03 per
# second of calls) and peaks at 2,165: a million would take some 250,000 SMS in 9 months.
MAX_CUSTOMER_VALUE = 1_000_000.0

Seconds = Annotated[int, Field(ge=0, le=PERIOD_SECONDS)]  # no line is in calls for longer than the period
Events = Annotated[int, Field(ge=0, le=PERIOD_SECONDS)]  # calls, failed calls, SMS, numbers: one a second at most
Months = Annotated[int, Field(ge=0, le=MAX_SUBSCRIPTION_MONTHS)]
Binary = Annotated[int, Field(ge=0, le=1)]
ChargeAmount = Annotated[int, Field(ge=0, le=10)]  # documented 0..9; the published data holds 10
AgeGroup = Annotated[int, Field(ge=1, le=5)]
OneOrTwo = Annotated[int, Field(ge=1, le=2)]
Age = Annotated[int, Field(ge=0, le=MAX_AGE)]
Money = Annotated[float, Field(ge=0, le=MAX_CUSTOMER_VALUE, allow_inf_nan=False)]
MAX_CUSTOMER_ID_LENGTH = 64  # predictions.customer_id, labels.customer_id


def _printable_customer_id(value: str) -> str:
    # A label joins by equality: a tab, a line break or padding would make the same customer two customers.
    if not value.isprintable():
        raise ValueError("customer_id holds characters that are not printable")
    if value != value.strip():
        raise ValueError("customer_id starts or ends with spaces")
    return value


# Optional in every layer (the published dataset has none); absent is None, never an empty string.
CustomerId = Annotated[
    str, Field(min_length=1, max_length=MAX_CUSTOMER_ID_LENGTH), AfterValidator(_printable_customer_id)
]

_SPACES = re.compile(r"\s+")


def normalise_header(name: str) -> str:
    """``"Call  Failure"`` -> ``"call_failure"``: the source files use irregular spacing and case."""
    return _SPACES.sub(" ", name.replace("\ufeff", "").strip().lower()).replace(" ", "_")


class CustomerFeatures(BaseModel):
    """The 13 model inputs of one customer: the single declaration of the feature columns (see
    :data:`FEATURES`). The field order is a contract: the wire record's and the model's input order."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    call_failure: Events
    complains: Binary
    subscription_length: Months
    charge_amount: ChargeAmount
    seconds_of_use: Seconds
    frequency_of_use: Events
    frequency_of_sms: Events
    distinct_called_numbers: Events
    age_group: AgeGroup
    tariff_plan: OneOrTwo
    status: OneOrTwo
    age: Age
    customer_value: Money


class CustomerRow(CustomerFeatures):
    """One CSV row after header normalisation; the label is optional (live streams carry none), and so is the
    customer id (the published dataset has none; labels that arrive later may name the customer instead)."""

    churn: Binary | None = None
    customer_id: CustomerId | None = None


@dataclass(frozen=True, slots=True)
class FeatureColumn:
    name: str
    type: Any  # the annotated type, e.g. ``Events``: the constraint both sides of the stream validate with
    value_type: type  # int or float: picks each layer's storage type and number syntax


def _feature_columns(model: type[BaseModel]) -> tuple[FeatureColumn, ...]:
    hints = get_type_hints(model, include_extras=True)
    columns = []
    for name in model.model_fields:
        annotated = hints[name]
        value_type = get_args(annotated)[0] if get_origin(annotated) is Annotated else annotated
        if value_type not in (int, float):
            raise TypeError(f"feature {name!r} is {value_type!r}: only int and float columns can be stored")
        columns.append(FeatureColumn(name, annotated, value_type))
    return tuple(columns)


# The column specification: every layout of a customer record (wire tuple, table, staging, CSV syntax) is
# derived from it, so no layer restates which column holds what.
FEATURES: tuple[FeatureColumn, ...] = _feature_columns(CustomerFeatures)
FEATURE_COLUMNS: tuple[str, ...] = tuple(feature.name for feature in FEATURES)
DECIMAL_COLUMNS: tuple[str, ...] = tuple(feature.name for feature in FEATURES if feature.value_type is float)
LABEL_COLUMN = "churn"
# A churn probability at or above it is a churn decision: the scorer stores it, training and the monitor judge it.
DECISION_THRESHOLD = 0.5
LABEL_TYPE: Any = get_type_hints(CustomerRow, include_extras=True)[LABEL_COLUMN]
CUSTOMER_ID_COLUMN = "customer_id"
CUSTOMER_ID_TYPE: Any = get_type_hints(CustomerRow, include_extras=True)[CUSTOMER_ID_COLUMN]
CATEGORICAL_COLUMNS: tuple[str, ...] = ("complains", "charge_amount", "age_group", "tariff_plan", "status")
NUMERICAL_COLUMNS: tuple[str, ...] = tuple(c for c in FEATURE_COLUMNS if c not in CATEGORICAL_COLUMNS)
