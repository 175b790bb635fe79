"""Time windows of the monitor: fixed-length, aligned to multiples of the window length since the epoch (UTC).

Alignment makes a window's identity independent of when the monitor happens to run, so a catch-up after
downtime evaluates exactly the windows a punctual schedule would have, and each only once, unless rows arrive
after its evaluation: then the window is re-opened and evaluated again (:func:`due_windows`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import BigInteger, ColumnElement, Connection, Engine, cast, extract, func, select

from batch_monitor.core.window import Window, as_utc
from churn_common.database import labels, monitoring_windows, predictions


def first_open_bucket(*, now: datetime, window_seconds: int, lateness_seconds: float) -> int:
    """Index of the oldest window that is not closed yet; every bucket below it is closed."""
    horizon = as_utc(now) - timedelta(seconds=lateness_seconds)
    return int(horizon.timestamp() // window_seconds)


def closed_before(*, now: datetime, window_seconds: int, lateness_seconds: float) -> datetime:
    """Start of the oldest window that is not closed yet: every event time before it is in a closed window."""
    bucket = first_open_bucket(now=now, window_seconds=window_seconds, lateness_seconds=lateness_seconds)
    return Window.of_bucket(bucket, seconds=window_seconds).start


@dataclass(frozen=True, slots=True)
class PendingWindow:
    """A closed window with predictions of model versions to evaluate in it: versions never evaluated there,
    and re-opened ones, whose stored evaluation counted fewer records than the window holds now.

    ``rows_by_version``: stored rows per version; ``evaluated_rows_by_version``: for the re-opened versions,
    the records their stored evaluation counted (the evaluation about to replace it will count them all).
    """

    window: Window
    rows_by_version: Mapping[str, int]
    evaluated_rows_by_version: Mapping[str, int] = field(default_factory=dict)

    @property
    def versions(self) -> tuple[str, ...]:
        """Registry versions are numbers in text: 9 comes before 10."""
        return tuple(sorted(self.rows_by_version, key=lambda v: (not v.isdigit(), int(v) if v.isdigit() else 0, v)))

    @property
    def reopened(self) -> bool:
        return bool(self.evaluated_rows_by_version)


@dataclass(frozen=True, slots=True)
class StoredRows:
    """One group of the pending-window scan: the stored prediction rows of a window and model version."""

    bucket: int
    model_version: str
    rows: int


EvaluatedRows = Mapping[tuple[datetime, str], int]  # (window start, model version) -> records its evaluation counted


def due_windows(stored: Iterable[StoredRows], evaluated: EvaluatedRows, *, window_seconds: int) -> list[PendingWindow]:
    """Windows with a version never evaluated, or holding more rows than its stored evaluation counted, oldest
    first.

    Rows of a file carry its upload time as event time, so a file that streams for longer than the lateness (or
    a shard that stalls) adds rows to a window after it was evaluated. Counting them is exact where comparing
    times is not: a scorer batch is stamped before it commits, so a batch stamped before an evaluation may
    still commit after it read the window. Fewer rows than counted (retention deleted some) re-open nothing.
    A window with copies of a record holds more rows than records; :func:`pending_windows` checks those.
    """
    by_bucket: dict[int, dict[str, int]] = {}
    before: dict[int, dict[str, int]] = {}
    for group in stored:
        start = Window.of_bucket(group.bucket, seconds=window_seconds).start
        counted = evaluated.get((start, group.model_version))
        if counted is not None and group.rows <= counted:
            continue
        by_bucket.setdefault(group.bucket, {})[group.model_version] = group.rows
        if counted is not None:
            before.setdefault(group.bucket, {})[group.model_version] = counted
    return [
        PendingWindow(Window.of_bucket(b, seconds=window_seconds), versions, before.get(b, {}))
        for b, versions in sorted(by_bucket.items())
    ]


BucketExpression = Callable[[ColumnElement[datetime], int], ColumnElement[int]]

# Window index of a timestamp column, per SQL dialect. SQLite keeps UTC text ("YYYY-MM-DD HH:MM:SS.ffffff");
# its date functions round to milliseconds (xx:59.9999 would land in the next window), so the fraction is cut
# off first; it has no floor() in every build, but integer division floors the positive epoch seconds.
_SQLITE_WHOLE_SECONDS = len("YYYY-MM-DD HH:MM:SS")
_BUCKETS: Mapping[str, BucketExpression] = {
    "postgresql": lambda column, seconds: cast(func.floor(extract("epoch", column) / seconds), BigInteger),
    "sqlite": lambda column, seconds: (
        cast(func.strftime("%s", func.substr(column, 1, _SQLITE_WHOLE_SECONDS)), BigInteger) // seconds
    ),
}


def bucket_expression(dialect: str, column: ColumnElement[datetime], window_seconds: int) -> ColumnElement[int]:
    try:
        bucket = _BUCKETS[dialect]
    except KeyError:
        raise NotImplementedError(f"no epoch bucketing for SQL dialect {dialect!r}") from None
    return bucket(column, window_seconds)


def scan_start(engine: Engine, *, retry_seconds: float) -> datetime | None:
    """Where the scan for pending windows starts: ``retry_seconds`` before the newest evaluated window.

    Scanning every prediction ever stored on each run would cost more every day. Everything after the newest
    evaluated window is new (a catch-up after downtime of any length starts there); before it, only windows
    whose evaluation failed or that received rows after their evaluation can still be pending, and those are
    retried or re-opened for ``retry_seconds`` of window time (a failure that outlasts that needs a person, and
    each of its runs ended failed; a file still streaming that long after its upload is monitored in part).
    ``None``: nothing was evaluated yet, scan everything.
    """
    with engine.connect() as connection:
        newest = connection.execute(select(func.max(monitoring_windows.c.window_start))).scalar_one_or_none()
    return None if newest is None else as_utc(newest) - timedelta(seconds=retry_seconds)


def _records(connection: Connection, *, window: Window, model_version: str, model_name: str | None) -> int:
    """Distinct records of a window and version: what an evaluation counts as its rows."""
    query = select(func.count(predictions.c.record_id.distinct())).where(
        predictions.c.model_version == model_version,
        predictions.c.event_time >= window.start,
        predictions.c.event_time < window.end,
    )
    if model_name is not None:
        query = query.where(predictions.c.model_name == model_name)
    return int(connection.execute(query).scalar_one())


def _without_copies(connection: Connection, pending: PendingWindow, *, model_name: str | None) -> PendingWindow | None:
    """``pending`` without the re-opened versions whose extra rows are only copies of records already counted."""
    grown = {
        version: counted
        for version, counted in pending.evaluated_rows_by_version.items()
        if _records(connection, window=pending.window, model_version=version, model_name=model_name) > counted
    }
    versions = {
        version: rows
        for version, rows in pending.rows_by_version.items()
        if version in grown or version not in pending.evaluated_rows_by_version
    }
    return PendingWindow(pending.window, versions, grown) if versions else None


def pending_windows(
    engine: Engine,
    *,
    window_seconds: int,
    now: datetime,
    lateness_seconds: float,
    model_name: str | None = None,
    since: datetime | None = None,
    relabelled_since: datetime | None = None,
) -> list[PendingWindow]:
    """Closed windows with predictions not yet evaluated for their model version, or re-opened by rows that
    came after their evaluation, oldest first.

    Counting happens in the database (one grouped scan of the event-time index); only the per-window
    counts come back. ``since`` bounds the scan for deployments with a long history, and with it how long a
    window can be re-opened. A window that seems to have grown is counted again by distinct records (one
    query over that window) before it is re-opened, so copies of a record never re-open it run after run.
    ``relabelled_since``: windows whose records got labels joined after their evaluation (labels joined since
    this wall-clock moment) are re-opened too, however old (:func:`relabelled_windows`).
    """
    cutoff = closed_before(now=now, window_seconds=window_seconds, lateness_seconds=lateness_seconds)
    bucket = bucket_expression(engine.dialect.name, predictions.c.event_time, window_seconds).label("bucket")
    query = (
        select(bucket, predictions.c.model_version, func.count().label("n_rows"))
        .where(predictions.c.event_time < cutoff)
        .group_by(bucket, predictions.c.model_version)
    )
    if model_name is not None:
        query = query.where(predictions.c.model_name == model_name)
    if since is not None:
        query = query.where(predictions.c.event_time >= Window.containing(since, seconds=window_seconds).start)
    with engine.connect() as connection:
        counts = [StoredRows(int(row.bucket), row.model_version, int(row.n_rows)) for row in connection.execute(query)]
        found = _due(connection, counts, window_seconds=window_seconds, model_name=model_name) if counts else []
        if relabelled_since is not None:
            found = _merged(
                found,
                relabelled_windows(
                    connection,
                    window_seconds=window_seconds,
                    cutoff=cutoff,
                    joined_since=relabelled_since,
                    model_name=model_name,
                ),
            )
    return found


def _due(
    connection: Connection, counts: list[StoredRows], *, window_seconds: int, model_name: str | None
) -> list[PendingWindow]:
    oldest = Window.of_bucket(min(group.bucket for group in counts), seconds=window_seconds).start
    done_rows = connection.execute(
        select(
            monitoring_windows.c.window_start, monitoring_windows.c.model_version, monitoring_windows.c.n_rows
        ).where(monitoring_windows.c.window_start >= oldest)
    ).all()
    evaluated = {(as_utc(row.window_start), row.model_version): int(row.n_rows) for row in done_rows}
    due = due_windows(counts, evaluated, window_seconds=window_seconds)
    checked = [
        _without_copies(connection, pending, model_name=model_name) if pending.reopened else pending for pending in due
    ]
    return [pending for pending in checked if pending is not None]


def _merged(due: list[PendingWindow], relabelled: list[PendingWindow]) -> list[PendingWindow]:
    by_start = {pending.window.start: pending for pending in due}
    for extra in relabelled:
        known = by_start.get(extra.window.start)
        if known is None:
            by_start[extra.window.start] = extra
            continue
        by_start[extra.window.start] = PendingWindow(
            known.window,
            {**extra.rows_by_version, **known.rows_by_version},
            {**extra.evaluated_rows_by_version, **known.evaluated_rows_by_version},
        )
    return [by_start[start] for start in sorted(by_start)]


def relabelled_windows(
    connection: Connection,
    *,
    window_seconds: int,
    cutoff: datetime,
    joined_since: datetime,
    model_name: str | None = None,
) -> list[PendingWindow]:
    """Closed, evaluated windows (and versions) holding records whose labels joined after that evaluation.

    Labels come weeks after their records (batch_monitor.labels), long after the scan horizon of
    :func:`scan_start`, so these windows are found from the labels joined since ``joined_since`` instead of
    by scanning predictions. The join and the evaluations are steps of the same monitor flow, one run at a
    time, so comparing the join's time with the evaluation's is exact here (unlike late rows, see
    :func:`due_windows`). The stored row count of each is kept as its ``evaluated_rows_by_version``."""
    bucket = bucket_expression(connection.dialect.name, predictions.c.event_time, window_seconds).label("bucket")
    query = (
        select(bucket, predictions.c.model_version, func.max(labels.c.joined_at).label("joined_at"))
        .select_from(labels.join(predictions, predictions.c.record_id == labels.c.record_id))
        .where(labels.c.status == "joined", labels.c.joined_at >= joined_since, predictions.c.event_time < cutoff)
        .group_by(bucket, predictions.c.model_version)
    )
    if model_name is not None:
        query = query.where(predictions.c.model_name == model_name)
    joined = {(int(row.bucket), row.model_version): as_utc(row.joined_at) for row in connection.execute(query)}
    if not joined:
        return []
    starts = {Window.of_bucket(b, seconds=window_seconds).start for b, _ in joined}
    stored = {
        (as_utc(row.window_start), row.model_version): (as_utc(row.evaluated_at), int(row.n_rows))
        for row in connection.execute(
            select(
                monitoring_windows.c.window_start,
                monitoring_windows.c.model_version,
                monitoring_windows.c.evaluated_at,
                monitoring_windows.c.n_rows,
            ).where(monitoring_windows.c.window_start.in_(starts))
        )
    }
    by_bucket: dict[int, tuple[dict[str, int], dict[str, int]]] = {}
    for (b, version), joined_at in sorted(joined.items()):
        window = Window.of_bucket(b, seconds=window_seconds)
        evaluation = stored.get((window.start, version))
        if evaluation is None or evaluation[0] >= joined_at:
            continue
        rows = _records(connection, window=window, model_version=version, model_name=model_name)
        versions, evaluated = by_bucket.setdefault(b, ({}, {}))
        versions[version], evaluated[version] = rows, evaluation[1]
    return [
        PendingWindow(Window.of_bucket(b, seconds=window_seconds), versions, evaluated)
        for b, (versions, evaluated) in sorted(by_bucket.items())
    ]
