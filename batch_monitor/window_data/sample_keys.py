"""Sample keys: a 32-bit number per record, from a hash of its record id, computed by the database.

A window is sampled by keeping the records whose key is below ``fraction * 2**32``. The hash makes the
choice unrelated to the data (a uniform sample) yet repeatable (a re-run keeps the same records and
reproduces its report), and hashing the record id, not the row, keeps or drops every copy of a re-sent
record together, so the sample deduplicates exactly like the full read. Postgres hashes in SQL; SQLite has
no hash function, so the monitor registers one on the connection before it samples.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Connection, func

KEY_SPACE = 1 << 32
SQLITE_KEY_FUNCTION = "monitor_sample_key"
_KEY_MASK = KEY_SPACE - 1
_FIBONACCI_MULTIPLIER = 0x9E3779B1


def sqlite_sample_key(record_id: str) -> int:
    """CRC-32 mixed by a multiplication, so that the kept rows show no pattern in the row numbers."""
    return (zlib.crc32(record_id.encode()) * _FIBONACCI_MULTIPLIER) & _KEY_MASK


def _register_sqlite_key(connection: Connection) -> None:
    driver = connection.connection.driver_connection
    driver.create_function(SQLITE_KEY_FUNCTION, 1, sqlite_sample_key, deterministic=True)  # type: ignore[union-attr]


@dataclass(frozen=True, slots=True)
class SampleKey:
    expression: Callable[[ColumnElement[str]], ColumnElement[int]]
    prepare: Callable[[Connection], None]


_SAMPLE_KEYS: Mapping[str, SampleKey] = {
    "postgresql": SampleKey(
        expression=lambda column: func.hashtextextended(column, 0).op("&")(_KEY_MASK),
        prepare=lambda _connection: None,
    ),
    "sqlite": SampleKey(
        expression=getattr(func, SQLITE_KEY_FUNCTION),
        prepare=_register_sqlite_key,
    ),
}


def sample_key(dialect: str) -> SampleKey:
    try:
        return _SAMPLE_KEYS[dialect]
    except KeyError:
        raise NotImplementedError(f"no sample key for SQL dialect {dialect!r}") from None


def key_threshold(fraction: float) -> int:
    """Keys below this are kept: ``fraction`` of all records, in expectation."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"sample fraction must be in (0, 1], got {fraction}")
    return min(KEY_SPACE, round(fraction * KEY_SPACE))
