"""The label tables: one file ingested exactly once, and the set-based join to ``predictions``.

A file's ``label_files`` row, its ``labels`` rows and the labels it sets on ``predictions`` commit in one
transaction, and ``label_files`` is unique per (key, version): a re-run or a re-delivered object finds its row
and changes nothing, while new content under the same key (a new version or ETag) is a new row. The join is a
few statements over the file's staged rows, whatever their number (``UPDATE ... FROM``, on SQLite and
Postgres): only a prediction without a label gets one, so a label never overwrites another and a record joins
once. ``unknown`` labels (their prediction is not stored yet: a label may overtake its record) are joined by
:func:`retry_unknown` on later runs.

A label by customer id is first bound to the record it judges: the customer's last prediction scored at or
before ``observed_at``, whose record id is written into the label's ``record_id`` (so a label row always says
which prediction it joined or was a duplicate of). From there it is joined as a label by record id is. While
the customer has no such prediction the label stays ``unknown``, with ``record_id`` NULL, and is bound again on
each retry. Binding is one statement over the labels in scope, whatever their number.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Connection, Engine, Table, case, exists, func, select, update
from sqlalchemy.exc import IntegrityError

from batch_monitor.labels.contract import LabelStatus, RowOutcome
from churn_common.database import label_files, labels, predictions

Scope = Callable[[Table], ColumnElement[bool]]  # which labels rows a resolve works on, for a table or its alias


@dataclass(frozen=True, slots=True)
class FileCounts:
    """Rows of one processed file by outcome (they add up to ``rows``)."""

    key: str
    version: str
    rows: int
    joined: int = 0
    duplicate: int = 0
    unknown: int = 0
    too_old: int = 0
    rejected: int = 0


def processed_versions(engine: Engine, keys: list[str]) -> set[tuple[str, str]]:
    """The (key, version) pairs among ``keys`` already ingested."""
    if not keys:
        return set()
    with engine.connect() as connection:
        rows = connection.execute(select(label_files.c.key, label_files.c.version).where(label_files.c.key.in_(keys)))
        return {(row.key, row.version) for row in rows}


def _bind_customer_labels(connection: Connection, scope: Scope) -> None:
    """``unknown`` labels by customer in ``scope`` get the record id of the prediction they judge, when stored.
    Ties on ``scored_at`` (one batch) go to the later record, then the later delivery."""
    judged = (
        select(predictions.c.record_id)
        .where(predictions.c.customer_id == labels.c.customer_id, predictions.c.scored_at <= labels.c.observed_at)
        .order_by(predictions.c.scored_at.desc(), predictions.c.event_time.desc(), predictions.c.event_id.desc())
        .limit(1)
        .correlate(labels)
        .scalar_subquery()
    )
    connection.execute(
        update(labels)
        .where(
            scope(labels),
            labels.c.status == LabelStatus.UNKNOWN,
            labels.c.record_id.is_(None),
            labels.c.customer_id.is_not(None),
            judged.is_not(None),
        )
        .values(record_id=judged)
    )


def _resolve(connection: Connection, scope: Scope, *, now: datetime) -> int:
    """``unknown`` labels in ``scope`` against the predictions: duplicate where the prediction already has a
    label; else the first (lowest id) label of a record in scope sets it and is joined; the rest of that
    record's labels are then duplicates. A record id with no prediction stays unknown. Returns how many joined."""
    _bind_customer_labels(connection, scope)
    labelled = exists().where(predictions.c.record_id == labels.c.record_id, predictions.c.label.is_not(None))
    duplicates = (
        update(labels)
        .where(scope(labels), labels.c.status == LabelStatus.UNKNOWN, labelled)
        .values(status=LabelStatus.DUPLICATE, reason="the prediction of this record already has a label")
    )
    connection.execute(duplicates)
    earlier = labels.alias("earlier")
    first = select(func.min(earlier.c.id)).where(
        scope(earlier), earlier.c.status == LabelStatus.UNKNOWN, earlier.c.record_id == labels.c.record_id
    )
    candidate = [scope(labels), labels.c.status == LabelStatus.UNKNOWN, labels.c.id == first.scalar_subquery()]
    connection.execute(
        update(predictions)
        .where(predictions.c.record_id == labels.c.record_id, predictions.c.label.is_(None), *candidate)
        .values(label=labels.c.churned)
    )
    joined = connection.execute(
        update(labels).where(*candidate, labelled).values(status=LabelStatus.JOINED, joined_at=now)
    ).rowcount
    connection.execute(duplicates)
    return int(joined)


def ingest_file(
    engine: Engine, *, key: str, version: str, outcomes: list[RowOutcome], now: datetime
) -> FileCounts | None:
    """One file's rows stored and joined in one transaction; ``None`` when this version was ingested before
    (its ``label_files`` row is the transaction's first write, so a concurrent twin fails before doing more)."""
    try:
        with engine.begin() as connection:
            return _ingest(connection, key=key, version=version, outcomes=outcomes, now=now)
    except IntegrityError:
        if (key, version) in processed_versions(engine, [key]):
            return None
        raise


def _ingest(connection: Connection, *, key: str, version: str, outcomes: list[RowOutcome], now: datetime) -> FileCounts:
    file_id = connection.execute(
        label_files.insert().values(
            key=key,
            version=version,
            n_rows=len(outcomes),
            processed_at=now,
            **{str(status): 0 for status in LabelStatus},
        )
    ).inserted_primary_key[0]
    if outcomes:
        connection.execute(
            labels.insert(),
            [
                {
                    "file_id": file_id,
                    "record_id": o.record_id,
                    "customer_id": o.customer_id,
                    "churned": o.churned,
                    "observed_at": o.observed_at,
                    "source_key": key,
                    "row": o.row,
                    "status": str(o.status or LabelStatus.UNKNOWN),
                    "reason": o.reason,
                    "received_at": now,
                }
                for o in outcomes
            ],
        )
    _resolve(connection, lambda table: table.c.file_id == file_id, now=now)
    query = (
        select(labels.c.status, func.count().label("n")).where(labels.c.file_id == file_id).group_by(labels.c.status)
    )
    counted = {row.status: int(row.n) for row in connection.execute(query)}
    by_status = {str(status): counted.get(str(status), 0) for status in LabelStatus}
    connection.execute(update(label_files).where(label_files.c.id == file_id).values(**by_status))
    return FileCounts(key=key, version=version, rows=len(outcomes), **by_status)


EXPIRED_REASON = "no prediction of this record was stored within the retention period"
EXPIRED_CUSTOMER_REASON = "no prediction of this customer scored by observed_at was stored within the retention period"


def retry_unknown(engine: Engine, *, now: datetime, expire_before: datetime | None = None) -> int:
    """Join the ``unknown`` labels whose prediction has been stored since; returns how many joined.

    A label still waiting that was observed before ``expire_before`` (the retention horizon) becomes
    ``too_old``: its prediction, if it ever existed, is past retention, and retrying it forever would make
    every run slower."""
    with engine.begin() as connection:
        joined = _resolve(connection, lambda table: table.c.status == LabelStatus.UNKNOWN, now=now)
        if expire_before is not None:
            connection.execute(
                update(labels)
                .where(labels.c.status == LabelStatus.UNKNOWN, labels.c.observed_at < expire_before)
                .values(
                    status=LabelStatus.TOO_OLD,
                    reason=case((labels.c.record_id.is_(None), EXPIRED_CUSTOMER_REASON), else_=EXPIRED_REASON),
                )
            )
        return joined
