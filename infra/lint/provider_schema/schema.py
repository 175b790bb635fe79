"""The cached provider schema, typed, and refused when it is missing or was built from another pin.

A missing or stale cache is an error naming the make target that builds it, never a silent pass: a check
that quietly runs against nothing (or against the previous provider version) is worse than none.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Any

from infra.lint.provider_schema.jsii import SCHEMA_FORMAT
from infra.lint.provider_schema.pin import MAKE_TARGET, PIN_FILE, SCHEMA_FILE, Pin, read_pin


class SchemaUnavailableError(RuntimeError):
    """No usable cached schema: run the make target the message names."""


class Kind(StrEnum):
    ATTRIBUTE = "attribute"
    BLOCK = "block"
    # An object-typed argument: written `name = {...}`, and some (security group rules) also as blocks.
    NESTED_ATTRIBUTE = "nested_attribute"


def normalized(name: str) -> str:
    """One key for a Terraform name and its cdktf getter spelling (``address_1``, ``address1``)."""
    return name.replace("_", "").lower()


@dataclass(frozen=True)
class Argument:
    name: str
    kind: Kind
    required: bool = False
    repeatable: bool = False
    struct: str | None = None


@dataclass(frozen=True)
class Struct:
    """The arguments and blocks one block body accepts, and the attributes only the provider sets."""

    arguments: Mapping[str, Argument]
    computed: frozenset[str] = field(default_factory=frozenset)

    @cached_property
    def _computed_keys(self) -> frozenset[str]:
        return frozenset(normalized(name) for name in self.computed)

    def is_computed(self, name: str) -> bool:
        return name not in self.arguments and normalized(name) in self._computed_keys

    def has_attribute(self, name: str) -> bool:
        """Whether ``<resource>.<name>`` can be referenced: an argument, a block or a computed attribute."""
        return name in self.arguments or self.is_computed(name)


def _struct(raw: Mapping[str, Any]) -> Struct:
    arguments = {
        name: Argument(
            name=name,
            kind=Kind(entry["kind"]),
            required=entry.get("required", False),
            repeatable=entry.get("repeatable", False),
            struct=entry.get("struct"),
        )
        for name, entry in raw["arguments"].items()
    }
    return Struct(arguments=arguments, computed=frozenset(raw["computed"]))


@dataclass(frozen=True)
class ProviderSchema:
    """Resource and data source types by Terraform name, each the id of its top-level struct."""

    package: str
    provider_version: str
    provider: str
    resources: Mapping[str, str] = field(repr=False)
    data_sources: Mapping[str, str] = field(repr=False)
    raw_structs: Mapping[str, Mapping[str, Any]] = field(repr=False)
    _parsed: dict[str, Struct] = field(default_factory=dict, repr=False, compare=False)

    def struct(self, struct_id: str) -> Struct:
        """Parsed on first use: a run needs a few hundred of the several thousand structs."""
        if struct_id not in self._parsed:
            self._parsed[struct_id] = _struct(self.raw_structs[struct_id])
        return self._parsed[struct_id]

    def resource(self, type_name: str) -> Struct | None:
        struct_id = self.resources.get(type_name)
        return None if struct_id is None else self.struct(struct_id)

    def data_source(self, type_name: str) -> Struct | None:
        struct_id = self.data_sources.get(type_name)
        return None if struct_id is None else self.struct(struct_id)

    def provider_config(self) -> Struct:
        return self.struct(self.provider)


def schema_from_dict(raw: Mapping[str, Any]) -> ProviderSchema:
    return ProviderSchema(
        package=raw["package"],
        provider_version=raw["provider_version"],
        provider=raw["provider"],
        resources=raw["resources"],
        data_sources=raw["data_sources"],
        raw_structs=raw["structs"],
    )


def load_schema(*, path: Path = SCHEMA_FILE, pin: Pin | None = None) -> ProviderSchema:
    """The cached schema, which must have been built from ``pin`` (by default the repository's pin)."""
    expected = pin or read_pin()
    remedy = f"run `make {MAKE_TARGET}` (it fetches {expected.spec}, pinned in {PIN_FILE.name})"
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SchemaUnavailableError(f"no provider schema at {path}: {remedy}") from None
    if raw.get("pin") != expected.spec:
        raise SchemaUnavailableError(f"{path} was built from {raw.get('pin')!r}, not {expected.spec}: {remedy}")
    if raw.get("format") != SCHEMA_FORMAT:
        raise SchemaUnavailableError(f"{path} has format {raw.get('format')!r}, not {SCHEMA_FORMAT}: {remedy}")
    return schema_from_dict(raw)
