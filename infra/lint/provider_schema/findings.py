"""What the checker reports: one problem, at the top-level block it is in.

python-hcl2 gives no line numbers below the top level, so a nested problem is located by the line of its
top-level block and a path inside it (``aws_x.name.rule.filter``).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from infra.lint.provider_schema.hcl import TopBlock

SUGGESTIONS = 3


@dataclass(frozen=True, order=True)
class Finding:
    source: str
    address: str
    message: str

    def __str__(self) -> str:
        return f"{self.source}: {self.address}: {self.message}"


def finding_in(block: TopBlock, message: str, *, path: str = "") -> Finding:
    """A finding at ``path`` inside ``block`` (the block itself when empty)."""
    address = f"{block.address}.{path}" if path else block.address
    return Finding(source=str(block.source), address=address, message=message)


def suggest(name: str, candidates: list[str]) -> str:
    """' (did you mean a, b?)' for a misspelt name, else ''."""
    close = difflib.get_close_matches(name, candidates, n=SUGGESTIONS)
    return f" (did you mean {', '.join(close)}?)" if close else ""


def order(finding: Finding) -> tuple[str, int, str, str]:
    """By file, then line as a number (``x.tf:9`` before ``x.tf:10``)."""
    path, _, line = finding.source.rpartition(":")
    return (path, int(line) if line.isdigit() else 0, finding.address, finding.message)
