"""Grafana's PostgreSQL query macros, expanded as Grafana 11 expands them, so dashboard SQL can run in tests.

Two passes, in Grafana's order: the global substitutions every SQL data source makes (``$__interval``,
``$__interval_ms``, ``$__unixEpochFrom()``, ``$__unixEpochTo()``), then the Postgres macro engine
(``pkg/tsdb/grafana-postgresql-datasource/macros.go``): ``$__name(args)`` with the arguments split on
commas and trimmed. Times are UTC in Go's RFC 3339 with nanoseconds (trailing zeros dropped), group
intervals are whole seconds printed like Go's ``%v`` of a float (``10``, ``0.5``). A fill argument of
``$__timeGroup`` changes only how Grafana post-processes the rows, never the SQL.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

# Units of Grafana's gtime.ParseInterval (months and years by their usual approximation there).
_INTERVAL_UNITS: Mapping[str, float] = {
    "ms": 0.001,
    "s": 1,
    "m": 60,
    "h": 3600,
    "d": 86400,
    "w": 7 * 86400,
    "M": 30 * 86400,
    "y": 365 * 86400,
}
_MACRO = re.compile(r"\$([_a-zA-Z0-9]+)\(([^\)]*)\)")


class MacroError(ValueError):
    """A macro Grafana would reject (unknown name, missing argument, bad interval)."""


@dataclass(frozen=True, slots=True)
class TimeRange:
    start: datetime
    end: datetime
    interval: timedelta = timedelta(seconds=10)  # what Grafana derives from the panel width and minInterval

    @classmethod
    def last(cls, minutes: int, *, now: datetime, interval: timedelta = timedelta(seconds=10)) -> TimeRange:
        return cls(now - timedelta(minutes=minutes), now, interval)


def parse_interval(text: str) -> float:
    """Seconds of ``10s``, ``'5m'``, ``1h``, ... (gtime.ParseInterval)."""
    match = re.fullmatch(r"(\d+)(ms|s|m|h|d|w|M|y)", text.strip().strip("'"))
    if not match:
        raise MacroError(f"error parsing interval {text}")
    return int(match.group(1)) * _INTERVAL_UNITS[match.group(2)]


def go_float(value: float) -> str:
    """Go's ``%v`` of a float64 for the values intervals take: ``10``, ``0.5``."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def rfc3339_nano(moment: datetime) -> str:
    """Go's ``time.RFC3339Nano`` of a UTC time: ``2026-11-26T11:30:00Z``, ``...:00.25Z``."""
    moment = moment.astimezone(UTC)
    fraction = f"{moment.microsecond:06d}".rstrip("0")
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + (f".{fraction}" if fraction else "") + "Z"


def format_interval(interval: timedelta) -> str:
    """gtime.FormatInterval: the largest unit the interval reaches, truncated (``10s``, ``1m``, ``500ms``)."""
    ms = int(interval.total_seconds() * 1000)
    for unit, seconds in (("y", 365 * 86400), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if ms >= seconds * 1000:
            return f"{ms // (seconds * 1000)}{unit}"
    return f"{max(ms, 1)}ms"


def _needs(name: str, args: list[str], count: int) -> None:
    if len(args) < count or not args[0]:
        raise MacroError(f"missing arguments for macro {name}")


def _time_group(args: list[str], time_range: TimeRange) -> str:
    _needs("__timeGroup", args, 2)
    seconds = go_float(parse_interval(args[1]))
    return f"floor(extract(epoch from {args[0]})/{seconds})*{seconds}"


def _unix_epoch_group(args: list[str], time_range: TimeRange) -> str:
    _needs("__unixEpochGroup", args, 2)
    seconds = go_float(parse_interval(args[1]))
    return f"floor(({args[0]})/{seconds})*{seconds}"


def _first(name: str, build: Callable[[str], str]) -> Callable[[list[str], TimeRange], str]:
    def expand(args: list[str], time_range: TimeRange) -> str:
        _needs(name, args, 1)
        return build(args[0])

    return expand


def _macros(time_range: TimeRange) -> dict[str, Callable[[list[str], TimeRange], str]]:
    start, end = rfc3339_nano(time_range.start), rfc3339_nano(time_range.end)
    start_s, end_s = int(time_range.start.timestamp()), int(time_range.end.timestamp())
    start_ns, end_ns = int(time_range.start.timestamp() * 1e9), int(time_range.end.timestamp() * 1e9)
    return {
        "__time": _first("__time", lambda column: f'{column} AS "time"'),
        "__timeEpoch": _first("__timeEpoch", lambda column: f'extract(epoch from {column}) as "time"'),
        "__timeFilter": _first("__timeFilter", lambda column: f"{column} BETWEEN '{start}' AND '{end}'"),
        "__timeFrom": lambda args, _: f"'{start}'",
        "__timeTo": lambda args, _: f"'{end}'",
        "__timeGroup": _time_group,
        "__timeGroupAlias": lambda args, r: f'{_time_group(args, r)} AS "time"',
        "__unixEpochFilter": _first("__unixEpochFilter", lambda c: f"{c} >= {start_s} AND {c} <= {end_s}"),
        "__unixEpochNanoFilter": _first("__unixEpochNanoFilter", lambda c: f"{c} >= {start_ns} AND {c} <= {end_ns}"),
        "__unixEpochNanoFrom": lambda args, _: str(start_ns),
        "__unixEpochNanoTo": lambda args, _: str(end_ns),
        "__unixEpochGroup": _unix_epoch_group,
        "__unixEpochGroupAlias": lambda args, r: f'{_unix_epoch_group(args, r)} AS "time"',
    }


def expand_macros(sql: str, time_range: TimeRange) -> str:
    """The SQL Grafana sends to Postgres for ``sql`` over ``time_range``; raises on what Grafana rejects."""
    sql = sql.replace("$__interval_ms", str(int(time_range.interval.total_seconds() * 1000)))
    sql = sql.replace("$__interval", format_interval(time_range.interval))
    sql = sql.replace("$__unixEpochFrom()", str(int(time_range.start.timestamp())))
    sql = sql.replace("$__unixEpochTo()", str(int(time_range.end.timestamp())))
    macros = _macros(time_range)
    original = sql

    def replace(match: re.Match[str]) -> str:
        name, args = match.group(1), [a.strip() for a in match.group(2).split(",")]
        if name == "__timeGroup" and original[match.end() : match.end() + 1] == ",":
            name = "__timeGroupAlias"  # before Grafana 5.3 $__timeGroup added the alias; kept for old panels
        try:
            expand = macros[name]
        except KeyError:
            raise MacroError(f'unknown macro "{name}"') from None
        return expand(args, time_range)

    expanded = _MACRO.sub(replace, sql)
    if "$" in expanded:
        raise MacroError(f"unexpanded variable in: {expanded}")
    return expanded
