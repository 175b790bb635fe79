"""The provider schema, read out of the jsii assembly of a prebuilt CDKTF provider package.

cdktf generates, per resource and data source type, a class whose documentation links to the registry
page named after the Terraform type (its ``tfResourceType`` constant has no value in the assembly), a
config struct with one property per argument and block, and, per nested block, a struct and an
``...OutputReference`` class. Every struct property links to its registry anchor, which is the Terraform
name (reliable where camelCase is not: ``self`` is ``selfAttribute``, ``address_1`` is ``address1``); a
block's summary is ``"<name> block."``; optional arguments are ``optional``; a block that may repeat is a
collection of its struct. Attributes that only the provider sets have a getter on the class (or output
reference) and no property in the struct. Only that much is kept: the assembly is about 110 MB, the
extract a few.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

SCHEMA_FORMAT = 1
RESOURCE_BASE = "cdktf.TerraformResource"
DATA_SOURCE_BASE = "cdktf.TerraformDataSource"
PROVIDER_BASE = "cdktf.TerraformProvider"
OUTPUT_REFERENCE_SUFFIX = "OutputReference"
# Getters that cdktf adds to every output reference: the value as a whole, not an attribute.
NON_ATTRIBUTE_GETTERS = frozenset({"internalValue"})

_TYPE_PAGE = re.compile(r"\{@link \S+/docs/(?P<section>resources|data-sources)/\S+ (?P<type>[a-z0-9_]+)\}")
_ANCHOR = re.compile(r"\{@link \S+#(?P<name>[A-Za-z0-9_]+) \S+\}")
_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")

ATTRIBUTE = "attribute"
BLOCK = "block"
NESTED_ATTRIBUTE = "nested_attribute"


class AssemblyError(ValueError):
    """The assembly is not laid out as the cdktf generator this reader was written against lays it out."""


def snake_case(name: str) -> str:
    """Terraform's spelling of a cdktf getter name, for messages; lookups normalise both sides anyway."""
    return _CAMEL_BOUNDARY.sub("_", name).lower()


def _struct_id(fqn: str, *, assembly_name: str) -> str:
    return fqn.removeprefix(f"{assembly_name}.")


def _docs_text(member: Mapping[str, Any]) -> str:
    docs = member.get("docs", {})
    return f"{docs.get('summary', '')} {docs.get('remarks', '')}"


def _local_structs(type_ref: Mapping[str, Any], *, assembly_name: str) -> Iterator[tuple[str, bool]]:
    """The structs of this assembly a property type refers to, each with whether it sits in a collection."""
    if fqn := type_ref.get("fqn"):
        if fqn.startswith(f"{assembly_name}."):
            yield fqn, False
    elif collection := type_ref.get("collection"):
        for fqn, _ in _local_structs(collection["elementtype"], assembly_name=assembly_name):
            yield fqn, True
    elif union := type_ref.get("union"):
        for member in union["types"]:
            yield from _local_structs(member, assembly_name=assembly_name)


def _argument(prop: Mapping[str, Any], *, owner: str, assembly_name: str) -> tuple[str, dict[str, Any], str | None]:
    """(Terraform name, compact description, struct fqn or None) of one struct property."""
    anchor = _ANCHOR.search(_docs_text(prop))
    if anchor is None:
        raise AssemblyError(f"{owner}.{prop['name']}: no registry anchor in its documentation")
    name = anchor["name"]
    structs = list(_local_structs(prop["type"], assembly_name=assembly_name))
    is_block = prop.get("docs", {}).get("summary", "").strip() == f"{name} block."
    entry: dict[str, Any] = {"kind": ATTRIBUTE}
    fqn = None
    if structs:
        fqn, repeatable = structs[0]
        entry = {
            "kind": BLOCK if is_block else NESTED_ATTRIBUTE,
            "struct": _struct_id(fqn, assembly_name=assembly_name),
        }
        if repeatable:
            entry["repeatable"] = True
    elif is_block:
        # A block of dynamic shape (``primitive: any``): its contents are not described.
        entry = {"kind": BLOCK}
    if not prop.get("optional", False):
        entry["required"] = True
    return name, entry, fqn


def _computed(getters: list[Mapping[str, Any]], settable: set[str]) -> list[str]:
    """Getters that are neither an argument nor an argument's ``...Input`` twin: set by the provider only."""
    names = {prop["name"] for prop in getters if not prop.get("static")}
    computed = set()
    for name in names - settable - NON_ATTRIBUTE_GETTERS:
        if name.endswith("Input") and name.removesuffix("Input") in names | settable:
            continue
        computed.add(snake_case(name))
    return sorted(computed)


def _config_fqn(cls: Mapping[str, Any]) -> str:
    for parameter in cls.get("initializer", {}).get("parameters", []):
        if parameter["name"] == "config":
            return parameter["type"]["fqn"]
    raise AssemblyError(f"{cls['fqn']}: no config parameter in its constructor")


def build_schema(assembly: Mapping[str, Any], *, provider_version: str) -> dict[str, Any]:
    """The compact schema (see ``schema.ProviderSchema``) of every resource, data source and the provider."""
    assembly_name = assembly["name"]
    types: Mapping[str, Mapping[str, Any]] = assembly["types"]
    schema: dict[str, Any] = {
        "format": SCHEMA_FORMAT,
        "package": f"{assembly_name}@{assembly['version']}",
        "provider_version": provider_version,
        "provider": None,
        "resources": {},
        "data_sources": {},
        "structs": {},
    }
    getters_of: dict[str, list[Mapping[str, Any]]] = {}
    pending: list[str] = []
    for cls in types.values():
        base = cls.get("base")
        if cls.get("kind") != "class" or base not in (RESOURCE_BASE, DATA_SOURCE_BASE, PROVIDER_BASE):
            continue
        config = _config_fqn(cls)
        getters_of[config] = cls.get("properties", [])
        pending.append(config)
        config_id = _struct_id(config, assembly_name=assembly_name)
        if base == PROVIDER_BASE:
            schema["provider"] = config_id
            continue
        page = _TYPE_PAGE.search(_docs_text(cls))
        if page is None:
            raise AssemblyError(f"{cls['fqn']}: no registry link naming its Terraform type")
        section = "resources" if page["section"] == "resources" else "data_sources"
        schema[section][page["type"]] = config_id
    if schema["provider"] is None or not schema["resources"]:
        raise AssemblyError(f"{assembly_name}: no provider class or no resource classes")
    while pending:
        fqn = pending.pop()
        struct_id = _struct_id(fqn, assembly_name=assembly_name)
        if struct_id in schema["structs"]:
            continue
        struct = types[fqn]
        arguments: dict[str, Any] = {}
        for prop in struct.get("properties", []):
            name, entry, nested = _argument(prop, owner=fqn, assembly_name=assembly_name)
            arguments[name] = entry
            if nested is not None:
                pending.append(nested)
        getters = getters_of.get(fqn) or types.get(fqn + OUTPUT_REFERENCE_SUFFIX, {}).get("properties", [])
        settable = {prop["name"] for prop in struct.get("properties", [])}
        schema["structs"][struct_id] = {"arguments": arguments, "computed": _computed(getters, settable)}
    return schema
