"""Poison payloads, one per kind the scorer must reject without blocking its shard."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import orjson

from churn_common.schema import FEATURE_COLUMNS
from churn_common.wire import SCHEMA_VERSION
from infra.local.chaos.plan import PoisonKind

POISON_SOURCE_ID = "chaos-poison"
FUTURE_SCHEMA_VERSION = SCHEMA_VERSION + 1
EVENT_TIME_MS = 1_764_139_800_123
_VALID_FEATURES: Mapping[str, int | float] = dict.fromkeys(FEATURE_COLUMNS, 1) | {"customer_value": 10.5}
_OUT_OF_RANGE: Mapping[str, int] = {"age_group": 9, "charge_amount": 42}


def _record(version: int, ordinal: int, features: Mapping[str, int | float]) -> bytes:
    values = [features[name] for name in FEATURE_COLUMNS]
    return orjson.dumps([version, POISON_SOURCE_ID, ordinal, EVENT_TIME_MS, *values, 0])


def _bad_values(ordinal: int) -> bytes:
    return _record(SCHEMA_VERSION, ordinal, {**_VALID_FEATURES, **_OUT_OF_RANGE})


def _undecodable(ordinal: int) -> bytes:
    return b"\x00\xff not json " + str(ordinal).encode()


def _unknown_version(ordinal: int) -> bytes:
    return _record(FUTURE_SCHEMA_VERSION, ordinal, _VALID_FEATURES)


POISON_PAYLOADS: Mapping[PoisonKind, Callable[[int], bytes]] = {
    PoisonKind.BAD_VALUES: _bad_values,
    PoisonKind.UNDECODABLE: _undecodable,
    PoisonKind.UNKNOWN_VERSION: _unknown_version,
}


def poison_payload(kind: PoisonKind, ordinal: int) -> bytes:
    return POISON_PAYLOADS[kind](ordinal)
