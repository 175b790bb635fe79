"""References to resources, data sources, modules, variables and locals inside Terraform expressions.

Terraform resolves references in expressions only: a quoted string is searched inside its ``${...}``
interpolations, so that prose in a description ("set var.x") is not taken for a reference. Index and
splat steps (``[0]``, ``["k"]``, ``[*]``) between a resource's name and its attribute are skipped. A
reference written in a way these patterns do not follow is not reported (a missed check, never a false
error).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from infra.lint.provider_schema.hcl import unquote

_NAME = r"[A-Za-z_][\w-]*"
_INDEX = r"(?P<index>(?:\[[^\[\]]*\])*)"
_ATTRIBUTE = rf"(?:\.(?P<attribute>{_NAME}))?"
_START = r"(?<![\w.\"])"
_RESOURCE = re.compile(rf"{_START}(?P<data>data\.)?(?P<type>aws_[a-z0-9_]+)\.(?P<name>{_NAME}){_INDEX}{_ATTRIBUTE}")
_MODULE = re.compile(rf"{_START}module\.(?P<name>{_NAME}){_INDEX}{_ATTRIBUTE}")
_SIMPLE = re.compile(rf"{_START}(?P<kind>var|local)\.(?P<name>{_NAME})")


@dataclass(frozen=True)
class Reference:
    """``kind`` is resource, data, module, var or local; ``type`` only for resource and data."""

    kind: str
    name: str
    type: str | None = None
    attribute: str | None = None

    @property
    def address(self) -> str:
        if self.kind == "resource":
            return f"{self.type}.{self.name}"
        if self.kind == "data":
            return f"data.{self.type}.{self.name}"
        return f"{self.kind}.{self.name}"

    def __str__(self) -> str:
        return self.address + (f".{self.attribute}" if self.attribute else "")


def _interpolations(template: str) -> Iterator[str]:
    """The ``${...}`` parts of a template, braces balanced (objects and nested templates inside)."""
    start = template.find("${")
    while start != -1:
        depth, position = 0, start + 1
        while position < len(template):
            if template[position] == "{":
                depth += 1
            elif template[position] == "}":
                depth -= 1
                if depth == 0:
                    break
            position += 1
        yield template[start + 2 : position]
        start = template.find("${", position)


def expressions(value: Any) -> Iterator[str]:
    """The expression texts of a parsed value: ``${...}`` values, interpolations, object keys too."""
    if isinstance(value, dict):
        for key, item in value.items():
            if not str(key).startswith("__"):
                yield from expressions(key)
                yield from expressions(item)
    elif isinstance(value, list):
        for item in value:
            yield from expressions(item)
    elif isinstance(value, str):
        text = unquote(value)
        if text != value or not value.startswith("${"):
            yield from _interpolations(text)
        else:
            yield value[2:-1]


def references(expression: str) -> Iterator[Reference]:
    for match in _RESOURCE.finditer(expression):
        kind = "data" if match["data"] else "resource"
        yield Reference(kind=kind, type=match["type"], name=match["name"], attribute=match["attribute"])
    for match in _MODULE.finditer(expression):
        yield Reference(kind="module", name=match["name"], attribute=match["attribute"])
    for match in _SIMPLE.finditer(expression):
        yield Reference(kind=match["kind"], name=match["name"])
