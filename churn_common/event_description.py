"""What an event that a handler cannot use looked like, in one line: the fields that tell AWS event shapes
apart, never the whole payload (it may be large, and it is the caller's data)."""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

SHOWN_CHARS = 200
SHOWN_KEYS = 12
RECORD_SOURCE_FIELDS = ("eventSource", "EventSource")
TELLING_FIELDS = ("source", "detail-type", "Type", "Event")


def shown(text: str) -> str:
    return repr(text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS] + "...")


def first_error(exc: ValidationError) -> str:
    error = exc.errors(include_url=False)[0]
    where = ".".join(str(part) for part in error["loc"])
    return f"{where}: {error['msg']}" if where else error["msg"]


def _record_sources(payload: dict[str, Any], field: str) -> set[str]:
    records = payload.get("Records")
    if not isinstance(records, list):
        return set()
    return {str(r.get(field)) for r in records if isinstance(r, dict) and field in r}


def describe(payload: Any) -> str:
    """``keys [...], Records[].eventSource [...], source '...'``, or the JSON type and a shortened text."""
    if not isinstance(payload, dict):
        return f"JSON {type(payload).__name__} {shown(json.dumps(payload, default=str))}"
    keys = list(payload)
    parts = [f"keys {keys[:SHOWN_KEYS]}{' ...' if len(keys) > SHOWN_KEYS else ''}"]
    parts.extend(
        f"Records[].{field} {sorted(sources)}"
        for field in RECORD_SOURCE_FIELDS
        if (sources := _record_sources(payload, field))
    )
    parts.extend(f"{field} {shown(str(payload[field]))}" for field in TELLING_FIELDS if field in payload)
    return ", ".join(parts)
