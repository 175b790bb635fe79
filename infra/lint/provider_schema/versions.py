"""Whether a Terraform version constraint admits a version: the pin must be one the code may run with.

Covers the operators Terraform documents (``=``, ``!=``, ``>``, ``>=``, ``<``, ``<=``, ``~>``), comma-
separated; pre-release suffixes are not compared.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable

_CLAUSE = re.compile(r"^\s*(?P<op>~>|>=|<=|!=|=|>|<)?\s*v?(?P<version>\d+(?:\.\d+)*)(?:-[\w.]+)?\s*$")
_COMPARE: dict[str, Callable[[tuple[int, ...], tuple[int, ...]], bool]] = {
    "=": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}
VERSION_PARTS = 3


class ConstraintError(ValueError):
    """Not a version constraint this reader understands."""


def _parts(version: str, *, width: int = VERSION_PARTS) -> tuple[int, ...]:
    numbers = [int(part) for part in version.split("-", 1)[0].split(".")]
    return tuple(numbers + [0] * (width - len(numbers)))


def _pessimistic(version: str, candidate: tuple[int, ...]) -> bool:
    """``~> 5.80`` admits 5.80 up to (not with) 6.0; ``~> 5.80.1`` up to 5.81."""
    given = [int(part) for part in version.split(".")]
    floor = _parts(version)
    if len(given) == 1:
        return candidate >= floor
    ceiling = [*given[:-1]]
    ceiling[-1] += 1
    return floor <= candidate < _parts(".".join(map(str, ceiling)))


def admits(constraint: str, version: str) -> bool:
    candidate = _parts(version)
    for clause in constraint.split(","):
        match = _CLAUSE.match(clause)
        if match is None:
            raise ConstraintError(f"not a version constraint: {constraint!r}")
        op = match["op"] or "="
        if op == "~>":
            if not _pessimistic(match["version"], candidate):
                return False
        elif not _COMPARE[op](candidate, _parts(match["version"])):
            return False
    return True
