"""Idempotent writes: a redelivered record (same event id) changes nothing."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, Insert, Table
from sqlalchemy.dialects import postgresql, sqlite

from churn_common.database import predictions, rejected_records

_INSERTS = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


@dataclass(frozen=True, slots=True)
class WriteResult:
    inserted: int
    duplicates: int
    rejected_inserted: int


def _insert_ignoring_duplicates(table: Table, dialect: str) -> Insert:
    try:
        insert = _INSERTS[dialect]
    except KeyError:
        raise NotImplementedError(f"no idempotent insert for dialect {dialect!r}") from None
    return insert(table).on_conflict_do_nothing(index_elements=["event_id"]).returning(table.c.event_id)


def write_batch(engine: Engine, *, rows: Sequence[dict[str, Any]], rejects: Sequence[dict[str, Any]]) -> WriteResult:
    """One transaction for the whole batch: either everything is written or nothing is."""
    inserted = rejected_inserted = 0
    with engine.begin() as connection:
        if rows:
            inserted = len(
                connection.execute(_insert_ignoring_duplicates(predictions, engine.dialect.name), rows).all()
            )
        if rejects:
            statement = _insert_ignoring_duplicates(rejected_records, engine.dialect.name)
            rejected_inserted = len(connection.execute(statement, rejects).all())
    return WriteResult(inserted=inserted, duplicates=len(rows) - inserted, rejected_inserted=rejected_inserted)
