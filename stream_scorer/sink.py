"""Idempotent writes: one transaction per batch; a redelivered record (same event id) changes nothing, and
neither does a record sent again (same record id, e.g. a re-dropped file): each record is stored once, as
it was first scored.

All predictions of a batch go in with one idempotent statement: on Postgres the batch is COPYed (binary)
into a session-local staging table, then ``INSERT ... SELECT ... ON CONFLICT DO NOTHING``; on SQLite one
``INSERT ... SELECT ... FROM json_each(?) ON CONFLICT DO NOTHING`` reads the batch from one JSON
document. Either way the database does the per-row work, not Python. A record id already stored is left
out by the statement (``NOT EXISTS`` on the record id index); no two invocations of one shard overlap and
a record id always maps to the same shard, so no other writer can insert the same record id meanwhile.

A shadow-scored challenger's probability (or NULL) travels with each row and its version with the batch,
as the champion's do; what is left out as already stored does not change. So does each record's customer id
(NULL for a record without one), which labels by customer are joined through.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, Insert, Table, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError

from churn_common.database import predictions, rejected_records
from churn_common.errors import TransientError
from churn_common.schema import FEATURE_COLUMNS, FEATURES
from churn_common.wire import (
    CUSTOMER_ID_INDEX,
    EVENT_TIME_INDEX,
    FEATURE_SLICE,
    LABEL_INDEX,
    ROW_INDEX,
    SOURCE_ID_INDEX,
    record_id_for,
)
from stream_scorer.scoring import ScoredBatch

_INSERTS = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}
STAGING_TABLE = "scored_batch_stage"
LOOKUP_CHUNK = 5_000  # ids per IN list: well under SQLite's and Postgres's limits on bound parameters


@dataclass(frozen=True, slots=True)
class WriteResult:
    inserted: int
    duplicates: int
    rejected_inserted: int


def _quote(name: str) -> str:
    return f'"{name}"'


def _record_ids(batch: ScoredBatch) -> list[str]:
    return list(map(record_id_for, batch.columns[SOURCE_ID_INDEX], batch.columns[ROW_INDEX]))


def _stored_values(batch: ScoredBatch) -> dict[str, Sequence[Any]]:
    """The batch's values by the name each writer's row layout gives them (but the arrival time, which
    each writer encodes its own way), so that a layout is an order of names, not of expressions."""
    columns = batch.columns
    return {
        "event_id": batch.event_ids,
        "record_id": _record_ids(batch),
        "source_id": columns[SOURCE_ID_INDEX],
        "row": columns[ROW_INDEX],
        "event_ms": columns[EVENT_TIME_INDEX],
        "churn_probability": batch.probabilities,
        "churn_prediction": batch.predictions,
        "challenger_probability": batch.challenger_probabilities or [None] * len(batch),
        "label": columns[LABEL_INDEX],
        "customer_id": columns[CUSTOMER_ID_INDEX],
        **dict(zip(FEATURE_COLUMNS, columns[FEATURE_SLICE], strict=True)),
    }


def _first_of_each_record(rows: Iterable[tuple[Any, ...]], record_id_at: int) -> Iterator[tuple[Any, ...]]:
    """Rows without later copies of a record in the same batch."""
    seen: set[str] = set()
    for row in rows:
        if row[record_id_at] not in seen:
            seen.add(row[record_id_at])
            yield row


# --- Postgres: binary COPY into a staging table, then one INSERT ... SELECT ----------------------------

FEATURE_PG_TYPES = {int: "int4", float: "float8"}  # by a feature's value type, as the table's Integer and Float
_STAGE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("event_id", "text"),
    ("record_id", "text"),
    ("source_id", "text"),
    ("row", "int8"),
    ("event_ms", "int8"),
    ("arrival_s", "float8"),
    ("churn_probability", "float8"),
    ("churn_prediction", "int2"),
    ("challenger_probability", "float8"),
    ("label", "int2"),
    ("customer_id", "text"),
    *((feature.name, FEATURE_PG_TYPES[feature.value_type]) for feature in FEATURES),
)
_STAGE_RECORD_ID = [name for name, _ in _STAGE_COLUMNS].index("record_id")
_CREATE_STAGE = (
    f"CREATE TEMPORARY TABLE IF NOT EXISTS {STAGING_TABLE} "
    f"({', '.join(f'{_quote(n)} {t}' for n, t in _STAGE_COLUMNS)}) ON COMMIT DELETE ROWS"
)
_COPY_STAGE = f"COPY {STAGING_TABLE} ({', '.join(_quote(n) for n, _ in _STAGE_COLUMNS)}) FROM STDIN (FORMAT BINARY)"
_COPIED_AS_IS = (
    "event_id",
    "record_id",
    "source_id",
    "row",
    "churn_probability",
    "churn_prediction",
    "challenger_probability",
    "label",
    "customer_id",
)
_INSERT_FROM_STAGE = (
    f"INSERT INTO predictions ({', '.join(_quote(n) for n in _COPIED_AS_IS)}, "
    f"event_time, arrival_time, scored_at, model_name, model_version, challenger_version, "
    f"{', '.join(_quote(n) for n in FEATURE_COLUMNS)}) "
    f"SELECT {', '.join(_quote(n) for n in _COPIED_AS_IS)}, "
    f"to_timestamp(event_ms / 1000.0), to_timestamp(arrival_s), %(scored_at)s, %(model_name)s, %(model_version)s, "
    f"%(challenger_version)s, "
    f"{', '.join(_quote(n) for n in FEATURE_COLUMNS)} "
    f"FROM {STAGING_TABLE} AS staged "
    f"WHERE NOT EXISTS (SELECT 1 FROM predictions AS stored WHERE stored.record_id = staged.record_id) "
    f"ON CONFLICT (event_id) DO NOTHING"
)


def _copy_then_insert(connection: Connection, batch: ScoredBatch, scored_at: datetime) -> int:
    values = _stored_values(batch) | {"arrival_s": batch.arrival_times}
    rows = zip(*(values[name] for name, _ in _STAGE_COLUMNS), strict=True)
    params = {
        "scored_at": scored_at,
        "model_name": batch.model_name,
        "model_version": batch.model_version,
        "challenger_version": batch.challenger_version,
    }
    driver = connection.connection.driver_connection
    assert driver is not None
    driver_error = connection.dialect.loaded_dbapi.Error
    try:
        with driver.cursor() as cursor:
            cursor.execute(_CREATE_STAGE)
            with cursor.copy(_COPY_STAGE) as copy:
                copy.set_types([pg_type for _, pg_type in _STAGE_COLUMNS])
                for row in _first_of_each_record(rows, _STAGE_RECORD_ID):
                    copy.write_row(row)
            cursor.execute(_INSERT_FROM_STAGE, params)
            return int(cursor.rowcount)
    except driver_error as exc:
        # Raised by the driver directly, not through SQLAlchemy: wrap it as SQLAlchemy would, and drop a
        # connection the failure closed, so callers see one kind of database error and the pool stays sound.
        if driver.closed:
            connection.invalidate(exc)
        raise DBAPIError.instance(
            _INSERT_FROM_STAGE, params, exc, driver_error, connection_invalidated=bool(driver.closed)
        ) from exc


# --- SQLite: one INSERT ... SELECT over a JSON document ------------------------------------------------

# The values of a document row, in order.
_DOC_FIELDS: tuple[str, ...] = (
    "event_id",
    "record_id",
    "arrival_time",
    "churn_probability",
    "churn_prediction",
    "challenger_probability",
    "source_id",
    "row",
    "event_ms",
    "label",
    "customer_id",
    *FEATURE_COLUMNS,
)
_DOC_AT = {name: position for position, name in enumerate(_DOC_FIELDS)}
_DOC_DIRECT = [name for name in _DOC_AT if name != "event_ms"]
# SQLAlchemy stores SQLite datetimes as 'YYYY-MM-DD HH:MM:SS.ffffff' (UTC here); the SQL builds the same.
_SQLITE_EVENT_TIME = (
    "strftime('%Y-%m-%d %H:%M:%S', (value ->> {at}) / 1000, 'unixepoch') "
    "|| printf('.%06d', ((value ->> {at}) % 1000) * 1000)"
).format(at=_DOC_AT["event_ms"])
_INSERT_FROM_JSON = (
    f"INSERT INTO predictions ({', '.join(_quote(n) for n in _DOC_DIRECT)}, "
    f"event_time, scored_at, model_name, model_version, challenger_version) "
    f"SELECT {', '.join(f'value ->> {_DOC_AT[n]}' for n in _DOC_DIRECT)}, "
    f"{_SQLITE_EVENT_TIME}, ?, ?, ?, ? "
    f"FROM json_each(?) "
    f"WHERE NOT EXISTS (SELECT 1 FROM predictions AS stored WHERE stored.record_id = value ->> {_DOC_AT['record_id']}) "
    f"ON CONFLICT (event_id) DO NOTHING"
)


def _sqlite_datetime(connection: Connection) -> Callable[[datetime], str]:
    dialect = connection.dialect
    processor = predictions.c.scored_at.type.dialect_impl(dialect).bind_processor(dialect)
    assert processor is not None
    return processor


def _insert_from_json(connection: Connection, batch: ScoredBatch, scored_at: datetime) -> int:
    as_text = _sqlite_datetime(connection)
    arrival_text = {t: as_text(datetime.fromtimestamp(t, tz=UTC)) for t in set(batch.arrival_times)}
    values = _stored_values(batch) | {"arrival_time": list(map(arrival_text.__getitem__, batch.arrival_times))}
    rows = zip(*(values[name] for name in _DOC_FIELDS), strict=True)
    document = orjson.dumps(list(_first_of_each_record(rows, _DOC_AT["record_id"])))
    result = connection.exec_driver_sql(
        _INSERT_FROM_JSON,
        (as_text(scored_at), batch.model_name, batch.model_version, batch.challenger_version, document.decode()),
    )
    return int(result.rowcount)


_PREDICTION_WRITERS: dict[str, Callable[[Connection, ScoredBatch, datetime], int]] = {
    "postgresql": _copy_then_insert,
    "sqlite": _insert_from_json,
}


def _insert_ignoring_duplicates(table: Table, dialect: str) -> Insert:
    statement = _INSERTS[dialect](table).on_conflict_do_nothing(index_elements=["event_id"])
    return statement.returning(table.c.event_id)


class StaleDeliveryIdsError(TransientError, RuntimeError):
    """A delivery id of this batch is stored for another record: the ids were qualified with the creation time
    of an earlier stream of the same name (a cached one). Nothing is written; the batch is retried once the
    stream's incarnation is asked again."""

    def __init__(self, collisions: int) -> None:
        super().__init__(f"{collisions} delivery id(s) of this batch are stored for other records")
        self.collisions = collisions


def _stored_for(connection: Connection, column: Any, table: Table, event_ids: Sequence[str]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for start in range(0, len(event_ids), LOOKUP_CHUNK):
        chunk = event_ids[start : start + LOOKUP_CHUNK]
        found.update(connection.execute(select(table.c.event_id, column).where(table.c.event_id.in_(chunk))).all())
    return found


def _collisions(connection: Connection, scored: ScoredBatch | None, rejects: Sequence[dict[str, Any]]) -> int:
    """Delivery ids of the batch already stored with other content: a redelivery stores the same record (or
    payload) under its id, a new stream whose ids were qualified with an old incarnation does not."""
    count = 0
    if scored is not None and len(scored):
        records = dict(zip(scored.event_ids, _record_ids(scored), strict=True))
        stored = _stored_for(connection, predictions.c.record_id, predictions, list(records))
        count += sum(1 for event_id, record_id in stored.items() if records[event_id] != record_id)
    if rejects:
        payloads = {r["event_id"]: r["payload"] for r in rejects}
        stored = _stored_for(connection, rejected_records.c.payload, rejected_records, list(payloads))
        count += sum(1 for event_id, payload in stored.items() if payloads[event_id] != payload)
    return count


def write_batch(
    engine: Engine, *, scored: ScoredBatch | None, rejects: Sequence[dict[str, Any]], scored_at: datetime
) -> WriteResult:
    """One transaction for the whole batch: either everything is written or nothing is. Anything the batch
    holds that was not inserted is checked to be a true repeat before the transaction commits."""
    dialect = engine.dialect.name
    try:
        write_predictions = _PREDICTION_WRITERS[dialect]
    except KeyError:
        raise NotImplementedError(f"no idempotent batch write for dialect {dialect!r}") from None
    inserted = rejected_inserted = 0
    total = len(scored) if scored is not None else 0
    with engine.begin() as connection:
        if total:
            inserted = write_predictions(connection, scored, scored_at)
        if rejects:
            statement = _insert_ignoring_duplicates(rejected_records, dialect)
            rejected_inserted = len(connection.execute(statement, list(rejects)).all())
        if (inserted < total or rejected_inserted < len(rejects)) and (
            collisions := _collisions(connection, scored, rejects)
        ):
            raise StaleDeliveryIdsError(collisions)
    return WriteResult(inserted=inserted, duplicates=total - inserted, rejected_inserted=rejected_inserted)
