"""Every layout of a customer record follows the one column specification (``churn_common.schema.FEATURES``):
its order and, for each column, its constraint and whether it holds whole or decimal numbers."""

from __future__ import annotations

from typing import Annotated, get_args, get_type_hints

import pytest
from pydantic import BaseModel, Field
from sqlalchemy.dialects import postgresql

from churn_common.database import predictions
from churn_common.schema import (
    DECIMAL_COLUMNS,
    FEATURE_COLUMNS,
    FEATURES,
    LABEL_TYPE,
    CustomerFeatures,
    _feature_columns,
)
from churn_common.wire import (
    EVENT_TIME_INDEX,
    FEATURE_SLICE,
    LABEL_INDEX,
    ROW_INDEX,
    SOURCE_ID_INDEX,
    VERSION_INDEX,
    WIRE_V1_FIELDS,
    WireRecordV1,
)
from data.churn_csv import FLOAT_COLUMNS
from producer import splitter
from stream_scorer import sink

# The v1 wire layout is a published contract: reordering the model's fields must not change it unnoticed.
V1_LAYOUT = (
    ("v", None),
    ("source_id", None),
    ("row", None),
    ("event_time_ms", None),
    ("call_failure", int),
    ("complains", int),
    ("subscription_length", int),
    ("charge_amount", int),
    ("seconds_of_use", int),
    ("frequency_of_use", int),
    ("frequency_of_sms", int),
    ("distinct_called_numbers", int),
    ("age_group", int),
    ("tariff_plan", int),
    ("status", int),
    ("age", int),
    ("customer_value", float),
    ("label", None),
    ("customer_id", None),  # optional: a record without one ends at the label
)
# Postgres's name of the type each SQLAlchemy feature column compiles to.
PG_TYPE_NAMES = {"INTEGER": "int4", "FLOAT": "float8"}


def test_the_spec_is_the_row_model_in_field_order() -> None:
    hints = get_type_hints(CustomerFeatures, include_extras=True)
    assert [f.name for f in FEATURES] == list(CustomerFeatures.model_fields) == list(FEATURE_COLUMNS)
    assert [f.type for f in FEATURES] == [hints[name] for name in FEATURE_COLUMNS]
    assert [f.value_type for f in FEATURES] == [get_args(hints[name])[0] for name in FEATURE_COLUMNS]


def test_the_v1_wire_layout_is_unchanged() -> None:
    by_name = {f.name: f.value_type for f in FEATURES}
    assert [(name, by_name.get(name)) for name in WIRE_V1_FIELDS] == list(V1_LAYOUT)


def test_the_wire_tuple_carries_each_feature_type_at_its_named_position() -> None:
    types = get_args(WireRecordV1)
    assert len(types) == len(WIRE_V1_FIELDS)
    assert WIRE_V1_FIELDS[FEATURE_SLICE] == FEATURE_COLUMNS
    assert list(types[FEATURE_SLICE]) == [f.type for f in FEATURES]
    assert types[LABEL_INDEX] == LABEL_TYPE
    named = {"v": VERSION_INDEX, "source_id": SOURCE_ID_INDEX, "row": ROW_INDEX, "event_time_ms": EVENT_TIME_INDEX}
    assert {name: WIRE_V1_FIELDS[index] for name, index in named.items()} == {name: name for name in named}
    assert WIRE_V1_FIELDS[LABEL_INDEX] == "label"


def test_the_table_stores_each_feature_as_its_value_type() -> None:
    feature_columns = [c for c in predictions.columns if c.name in FEATURE_COLUMNS]
    assert [c.name for c in feature_columns] == list(FEATURE_COLUMNS)
    assert [c.type.python_type for c in feature_columns] == [f.value_type for f in FEATURES]
    assert not any(c.nullable for c in feature_columns)


def test_postgres_staging_types_match_the_table() -> None:
    staged = dict(sink._STAGE_COLUMNS)
    assert [name for name, _ in sink._STAGE_COLUMNS if name in FEATURE_COLUMNS] == list(FEATURE_COLUMNS)
    dialect = postgresql.dialect()
    expected = {name: PG_TYPE_NAMES[predictions.c[name].type.compile(dialect=dialect)] for name in FEATURE_COLUMNS}
    assert {name: staged[name] for name in FEATURE_COLUMNS} == expected


def test_the_sqlite_document_holds_every_feature_and_stores_it_under_its_name() -> None:
    assert [name for name in sink._DOC_FIELDS if name in FEATURE_COLUMNS] == list(FEATURE_COLUMNS)
    for name in FEATURE_COLUMNS:
        assert f"value ->> {sink._DOC_AT[name]}" in sink._INSERT_FROM_JSON


def test_decimal_syntax_exactly_for_the_float_columns() -> None:
    floats = tuple(f.name for f in FEATURES if f.value_type is float)
    assert DECIMAL_COLUMNS == floats == FLOAT_COLUMNS
    decimal_syntax = {name for name, (pattern, _) in splitter._SYNTAX.items() if pattern.fullmatch("197.64")}
    assert decimal_syntax == set(floats)


def test_the_spec_follows_a_model_and_refuses_what_no_layer_can_store() -> None:
    class Numbers(BaseModel):
        whole: Annotated[int, Field(ge=0)]
        decimal: float

    assert [(f.name, f.value_type) for f in _feature_columns(Numbers)] == [("whole", int), ("decimal", float)]

    class Text(BaseModel):
        note: str

    with pytest.raises(TypeError, match="note"):
        _feature_columns(Text)
