"""Recorded Lambda events (see README.md in this folder)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

EVENTS = Path(__file__).parent


def load_event(name: str) -> Any:
    """The event stored as ``<name>.json``, freshly parsed, so a test may change its copy."""
    return json.loads((EVENTS / f"{name}.json").read_text(encoding="utf-8"))
