"""Early warning between windows: Page-Hinkley on the churn probabilities as they are scored.

Window evaluation waits for a window to close; this follows the predictions up to a moment ago, in scoring
order (``scored_at``, then ``event_id``), per model version (a new version may well predict another level).
Every ``BLOCK_ROWS`` predictions of a version make one block mean, the detector's observation
(:mod:`batch_monitor.early_warning.page_hinkley`); a detected shift is an ``early_warning`` alert in the ledger.

Each prediction is consumed once: the detector's state and watermark are one row of ``detector_state``,
written in the transaction that records the alerts and guarded by a revision number, so a restart gives the
same result as an uninterrupted run and a concurrent run changes nothing. Predictions are read up to
``until`` (now less the lateness), as a scorer batch is stamped before it is committed. A detector with no
state starts from the last ``FRESH_START_ROWS`` predictions: an early warning is about now.

Design notes: docs/batch_monitor.md#early-warning (parameters and their measurements)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
from pydantic import TypeAdapter
from sqlalchemy import Connection, Engine, and_, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from batch_monitor.alerting import ledger
from batch_monitor.alerting.episodes import Verdict
from batch_monitor.alerting.ledger import RecordedAlert
from batch_monitor.alerting.messages import Alert, dashboard_link, instant_subject, message_for
from batch_monitor.alerting.rules import AlertKind
from batch_monitor.core import Window, as_utc
from batch_monitor.early_warning.page_hinkley import PageHinkley, PageHinkleyConfig, Shift
from churn_common.database import detector_state, predictions
from churn_common.errors import TransientError
from churn_common.registry import PROBABILITY_COLUMN

BLOCK_ROWS = 50
PAGE_ROWS = 50_000
FRESH_START_ROWS = 10_000
DETECTOR_CONFIG = PageHinkleyConfig(block_rows=BLOCK_ROWS)
DETECTOR_PREFIX = "churn_probability"
# An early warning's span in the ledger is never empty, even when the shift began in the batch that showed it.
MIN_SPAN = timedelta(seconds=1)


class ConcurrentRunError(TransientError, RuntimeError):
    """Another run advanced the detector in the meantime; this run's work is discarded."""


@dataclass(frozen=True, slots=True)
class Block:
    """Predictions of a version not yet making up a full block: their count, sum and first scoring time."""

    count: int = 0
    total: float = 0.0
    first_at: float | None = None


@dataclass(frozen=True, slots=True)
class VersionState:
    detector: PageHinkley = field(default_factory=PageHinkley)
    block: Block = field(default_factory=Block)
    consumed: int = 0


@dataclass(frozen=True, slots=True)
class DetectedShift:
    model_version: str
    shift: Shift
    detected_at: float


@dataclass(frozen=True, slots=True)
class Watermark:
    scored_at: datetime
    event_id: str


@dataclass(frozen=True, slots=True)
class DetectorRun:
    consumed: int
    shifts: list[DetectedShift]
    recorded: list[RecordedAlert]


_STATE = TypeAdapter(dict[str, VersionState])


def detector_name(model_name: str) -> str:
    return f"{DETECTOR_PREFIX}:{model_name}"


def feed(
    state: VersionState, values: np.ndarray, times: np.ndarray, *, version: str, config: PageHinkleyConfig
) -> tuple[VersionState, list[DetectedShift]]:
    """One version's next predictions (in scoring order) through blocks and the detector.

    Block sums are running sums from the block's first value, so a block split across runs sums exactly as
    it would in one.
    """
    detector, block, shifts, start = state.detector, state.block, [], 0
    while len(values) - start >= config.block_rows - block.count:
        stop = start + config.block_rows - block.count
        total = float(np.cumsum(np.concatenate([[block.total], values[start:stop]]))[-1])
        first_at = block.first_at if block.first_at is not None else float(times[start])
        detector, shift = detector.update(total / config.block_rows, position=first_at, config=config)
        if shift is not None:
            shifts.append(DetectedShift(version, shift, float(times[stop - 1])))
        block, start = Block(), stop
    if start < len(values):
        total = float(np.cumsum(np.concatenate([[block.total], values[start:]]))[-1])
        first_at = block.first_at if block.first_at is not None else float(times[start])
        block = Block(block.count + len(values) - start, total, first_at)
    return VersionState(detector, block, state.consumed + len(values)), shifts


def advance(
    states: dict[str, VersionState],
    *,
    versions: Sequence[str],
    values: np.ndarray,
    times: np.ndarray,
    config: PageHinkleyConfig = DETECTOR_CONFIG,
) -> tuple[dict[str, VersionState], list[DetectedShift]]:
    """Every version's detector over a stretch of the stream (rows in scoring order); pure."""
    versions_array = np.asarray(versions)
    out, shifts = dict(states), []
    for version in sorted(set(versions)):
        mine = versions_array == version
        out[version], found = feed(
            out.get(version, VersionState()), values[mine], times[mine], version=version, config=config
        )
        shifts.extend(found)
    return out, sorted(shifts, key=lambda s: (s.detected_at, s.model_version))


def early_warning_alert(
    detected: DetectedShift,
    *,
    model_name: str,
    grafana_url: str | None,
    config: PageHinkleyConfig,
    fallback_url: str | None = None,
) -> Alert:
    shift = detected.shift
    started = datetime.fromtimestamp(shift.started_at, tz=UTC)
    at = datetime.fromtimestamp(detected.detected_at, tz=UTC)
    span = Window(started, max(at, started + MIN_SPAN))
    what = f"Early warning: churn probability {shift.direction} {shift.before:.2f} -> {shift.after:.2f}"
    subject = instant_subject(f"{what} (v{detected.model_version})", at)
    dashboard = dashboard_link(grafana_url=grafana_url, fallback_url=fallback_url, start=started, end=at)
    lines = [
        f"Model: {model_name} version {detected.model_version}",
        f"The mean churn probability moved {shift.direction} from {shift.before:.3f} to {shift.after:.3f}"
        f" (Page-Hinkley on means of {config.block_rows} predictions, in scoring order).",
        f"Shift began around {started.isoformat()} and was detected at {at.isoformat()} (scoring times),"
        f" {shift.observations * config.block_rows} predictions later.",
        f"Statistic {shift.statistic:.1f} > threshold {config.threshold:g} (standard deviations of a block mean,"
        f" tolerance {config.delta:g}).",
        "The monitoring windows holding these predictions are evaluated (drift, quality) once they close.",
        *([f"Dashboard: {dashboard}"] if dashboard else []),
    ]
    return Alert(AlertKind.EARLY_WARNING, span, subject, "\n".join(lines))


def record_event_alerts(
    connection: Connection, events: Sequence[Alert], *, cooldown: timedelta, now: datetime | None = None
) -> list[RecordedAlert]:
    """Alerts about moments (a detected shift) in the caller's transaction: e-mailed unless one of the same
    kind was within the cool-down; events never recover."""
    recorded: list[RecordedAlert] = []
    for event in sorted(events, key=lambda e: e.window.start):
        verdicts = {event.kind: Verdict.CROSSED}
        due = ledger.due(connection, start=event.window.start, verdicts=verdicts, cooldown=cooldown)
        entries = [(step, message_for(step, crossed={event.kind: event}, cooldown=cooldown)) for step in due]
        recorded.extend(ledger.record(connection, entries, now=now or datetime.now(tz=UTC)))
    return recorded


def _read_state(connection: Connection, name: str) -> tuple[int | None, Watermark | None, dict[str, VersionState]]:
    row = connection.execute(select(detector_state).where(detector_state.c.detector == name)).one_or_none()
    if row is None:
        return None, None, {}
    watermark = None
    if row.watermark_scored_at is not None:
        watermark = Watermark(as_utc(row.watermark_scored_at), row.watermark_event_id)
    return row.revision, watermark, _STATE.validate_json(row.state)


def _read_page(
    connection: Connection, *, model_name: str, after: Watermark | None, until: datetime, limit: int
) -> list[tuple[str, datetime, str, float]]:
    query = select(
        predictions.c.event_id, predictions.c.scored_at, predictions.c.model_version, predictions.c[PROBABILITY_COLUMN]
    ).where(predictions.c.model_name == model_name, predictions.c.scored_at <= until)
    if after is not None:
        query = query.where(
            predictions.c.scored_at >= after.scored_at,
            or_(
                predictions.c.scored_at > after.scored_at,
                and_(predictions.c.scored_at == after.scored_at, predictions.c.event_id > after.event_id),
            ),
        )
    rows = connection.execute(query.order_by(predictions.c.scored_at, predictions.c.event_id).limit(limit)).all()
    return [(r[0], as_utc(r[1]), r[2], float(r[3])) for r in rows]


def _fresh_start(connection: Connection, *, model_name: str, until: datetime, rows: int) -> Watermark | None:
    """Just before the last ``rows`` predictions up to ``until``; ``None`` (from the start) when there are fewer."""
    query = (
        select(predictions.c.scored_at, predictions.c.event_id)
        .where(predictions.c.model_name == model_name, predictions.c.scored_at <= until)
        .order_by(predictions.c.scored_at.desc(), predictions.c.event_id.desc())
        .offset(rows)
        .limit(1)
    )
    row = connection.execute(query).one_or_none()
    return None if row is None else Watermark(as_utc(row.scored_at), row.event_id)


def _write_state(
    connection: Connection,
    *,
    name: str,
    revision: int | None,
    watermark: Watermark,
    states: dict[str, VersionState],
    now: datetime,
) -> None:
    values = {
        "watermark_scored_at": watermark.scored_at,
        "watermark_event_id": watermark.event_id,
        "state": _STATE.dump_json(states).decode(),
        "updated_at": now,
    }
    if revision is None:
        try:
            connection.execute(insert(detector_state).values(detector=name, revision=1, **values))
        except IntegrityError as exc:
            raise ConcurrentRunError(f"detector {name} was started by another run") from exc
        return
    changed = connection.execute(
        update(detector_state)
        .where(detector_state.c.detector == name, detector_state.c.revision == revision)
        .values(revision=revision + 1, **values)
    ).rowcount
    if changed != 1:
        raise ConcurrentRunError(f"detector {name} was advanced by another run")


def run_detector(
    engine: Engine,
    *,
    model_name: str,
    until: datetime,
    cooldown: timedelta,
    grafana_url: str | None = None,
    fallback_url: str | None = None,
    config: PageHinkleyConfig = DETECTOR_CONFIG,
    page_rows: int = PAGE_ROWS,
    fresh_start_rows: int = FRESH_START_ROWS,
    now: datetime | None = None,
) -> DetectorRun:
    """Consume every prediction of ``model_name`` scored up to ``until`` that earlier runs did not (a fresh
    detector: the last ``fresh_start_rows`` of them), page by page, each page's state and alerts in one
    transaction."""
    name = detector_name(model_name)
    consumed, shifts, recorded = 0, [], []
    while True:
        with engine.begin() as connection:
            revision, watermark, states = _read_state(connection, name)
            if revision is None:
                watermark = _fresh_start(connection, model_name=model_name, until=until, rows=fresh_start_rows)
            rows = _read_page(connection, model_name=model_name, after=watermark, until=until, limit=page_rows)
            if not rows:
                break
            states, found = advance(
                states,
                versions=[r[2] for r in rows],
                values=np.fromiter((r[3] for r in rows), dtype="float64", count=len(rows)),
                times=np.fromiter((r[1].timestamp() for r in rows), dtype="float64", count=len(rows)),
                config=config,
            )
            last = rows[-1]
            _write_state(
                connection,
                name=name,
                revision=revision,
                watermark=Watermark(last[1], last[0]),
                states=states,
                now=now or datetime.now(tz=UTC),
            )
            alerts = [
                early_warning_alert(
                    s, model_name=model_name, grafana_url=grafana_url, config=config, fallback_url=fallback_url
                )
                for s in found
            ]
            recorded.extend(record_event_alerts(connection, alerts, cooldown=cooldown, now=now))
        consumed += len(rows)
        shifts.extend(found)
        if len(rows) < page_rows:
            break
    return DetectorRun(consumed, shifts, recorded)


def detector_states(engine: Engine, *, model_name: str) -> tuple[Watermark | None, dict[str, VersionState]]:
    """The stored watermark and per-version states (for dashboards and tests)."""
    with engine.connect() as connection:
        _, watermark, states = _read_state(connection, detector_name(model_name))
    return watermark, states
