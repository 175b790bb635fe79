"""The pinned package the schema comes from, and where its extract is cached.

The pin lives in infra/lint/provider-schema.txt so that the Makefile can make its stamp depend on it; the
cache records the pin it was built from, so that a stale cache is refused rather than silently used.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]
PIN_FILE = REPO_ROOT / "infra" / "lint" / "provider-schema.txt"
CACHE_DIR = REPO_ROOT / ".local" / "tools" / "provider-schema"
SCHEMA_FILE = CACHE_DIR / "schema.json"
MAKE_TARGET = "provider-schema"

_PIN_LINE = re.compile(r"^(?P<name>@?[^@\s]+)@(?P<version>\d[^\s]*)\s+(?P<integrity>sha512-[A-Za-z0-9+/=]+)$")


class PinError(ValueError):
    """The pin file does not name exactly one package version with its integrity."""


@dataclass(frozen=True)
class Pin:
    """An exact npm package version and the sha512 integrity npm publishes for its tarball."""

    name: str
    version: str
    integrity: str

    @property
    def spec(self) -> str:
        return f"{self.name}@{self.version}"


def parse_pin(text: str, *, source: str = str(PIN_FILE)) -> Pin:
    """The one ``name@version sha512-...`` line of a pin file; comments and blank lines are ignored."""
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    if len(lines) != 1 or not (match := _PIN_LINE.match(lines[0])):
        raise PinError(f"{source}: expected one line '<package>@<exact version> sha512-<integrity>', got {lines!r}")
    return Pin(name=match["name"], version=match["version"], integrity=match["integrity"])


def read_pin(*, path: Path = PIN_FILE) -> Pin:
    return parse_pin(path.read_text(encoding="utf-8"), source=str(path))
