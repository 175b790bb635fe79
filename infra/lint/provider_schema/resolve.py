"""References resolved: what `terraform validate` reports as undeclared or unsupported, and deprecations.

A resource or data source reference must name one declared in the same module and, for ``aws_`` types,
an attribute the type has (argument, block or computed attribute); ``module.<name>.<output>`` a declared
call and, for a local module, one of its outputs; ``var.`` and ``local.`` declared names. Each message is
reported once per top-level block.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from infra.lint.provider_schema.deprecations import deprecated_reference
from infra.lint.provider_schema.findings import Finding
from infra.lint.provider_schema.hcl import Module
from infra.lint.provider_schema.modules import local_module_directory
from infra.lint.provider_schema.references import Reference, expressions, references
from infra.lint.provider_schema.schema import ProviderSchema


def _resource_messages(schema: ProviderSchema, module: Module, reference: Reference) -> Iterator[str]:
    if not module.declares(reference.address):
        yield f"reference to undeclared {reference.address}"
        return
    lookup = schema.resource if reference.kind == "resource" else schema.data_source
    struct = lookup(reference.type or "")
    if struct is not None and reference.attribute and not struct.has_attribute(reference.attribute):
        yield f"{reference}: {reference.type} has no attribute {reference.attribute}"
    if (deprecation := deprecated_reference(reference, struct=struct)) is not None:
        yield deprecation


def _module_messages(module: Module, modules: dict[Path, Module], reference: Reference) -> Iterator[str]:
    calls = {call.labels[0]: call for call in module.module_calls}
    if reference.name not in calls:
        yield f"reference to undeclared {reference.address}"
        return
    directory = local_module_directory(module, calls[reference.name])
    called = modules.get(directory) if directory else None
    if called is not None and reference.attribute and reference.attribute not in called.outputs:
        yield f"{reference}: module {reference.name} has no output {reference.attribute}"


def _messages(
    schema: ProviderSchema, module: Module, modules: dict[Path, Module], reference: Reference
) -> Iterator[str]:
    if reference.kind in ("resource", "data"):
        yield from _resource_messages(schema, module, reference)
    elif reference.kind == "module":
        yield from _module_messages(module, modules, reference)
    elif reference.kind == "var" and reference.name not in module.variables:
        yield f"reference to undeclared variable {reference.name}"
    elif reference.kind == "local" and reference.name not in module.locals:
        yield f"reference to undeclared local value {reference.name}"


def check_references(schema: ProviderSchema, module: Module, *, modules: dict[Path, Module]) -> Iterator[Finding]:
    """``modules`` must already hold the module's local calls (``modules.called_module``)."""
    seen: set[Finding] = set()
    for value, address, source in module.values:
        for expression in expressions(value):
            for reference in references(expression):
                for message in _messages(schema, module, modules, reference):
                    finding = Finding(source=str(source), address=address, message=message)
                    if finding not in seen:
                        seen.add(finding)
                        yield finding
