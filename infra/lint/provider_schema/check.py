"""infra/terraform against the provider schema: what `terraform validate` would reject, and more.

Per module directory (the root, every directory below it with .tf files, and every local module they
call): resource, data source and provider blocks (``blocks``), module calls (``modules``), references
(``resolve``), what 6.x deprecates (``deprecations``), and whether each module's required AWS provider
version admits the version the schema was generated from, so that a schema older or newer than the code
allows cannot pass silently.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from infra.lint.provider_schema.blocks import PROVIDER, check_provider_block, check_typed_block
from infra.lint.provider_schema.deprecations import check_deprecated_arguments
from infra.lint.provider_schema.findings import Finding, order
from infra.lint.provider_schema.hcl import Module, load_module, module_directories
from infra.lint.provider_schema.modules import check_module_call
from infra.lint.provider_schema.resolve import check_references
from infra.lint.provider_schema.schema import ProviderSchema
from infra.lint.provider_schema.versions import ConstraintError, admits


def _check_versions(schema: ProviderSchema, module: Module) -> Iterator[Finding]:
    requirement = module.required_providers.get(PROVIDER)
    if requirement is None:
        return
    constraint, source = requirement
    try:
        admitted = admits(constraint, schema.provider_version)
    except ConstraintError as error:
        yield Finding(source=str(source), address="terraform.required_providers", message=str(error))
        return
    if not admitted:
        yield Finding(
            source=str(source),
            address="terraform.required_providers",
            message=f"{PROVIDER} {constraint} does not admit {schema.provider_version}, the version of the pinned "
            f"schema ({schema.package}): pin the bindings of the lowest version admitted",
        )


def check_module(
    schema: ProviderSchema, module: Module, *, modules: dict[Path, Module], display_root: Path
) -> list[Finding]:
    """``modules`` (by resolved directory) is where called modules are looked up, and loaded into."""
    findings: list[Finding] = []
    for block in (*module.resources, *module.data_sources):
        findings.extend(check_typed_block(schema, block))
        findings.extend(check_deprecated_arguments(block))
    for block in module.providers:
        findings.extend(check_provider_block(schema, block))
    for call in module.module_calls:
        findings.extend(check_module_call(module, call, modules=modules, display_root=display_root))
    findings.extend(check_references(schema, module, modules=modules))
    findings.extend(_check_versions(schema, module))
    return findings


def check_configuration(root: Path, *, schema: ProviderSchema, display_root: Path | None = None) -> list[Finding]:
    """Findings for ``root`` and every module below it or called from it, sorted by file and line."""
    shown = display_root or root
    modules = {path.resolve(): load_module(path, display_root=shown) for path in module_directories(root)}
    checked: set[Path] = set()
    findings: list[Finding] = []
    while unchecked := [directory for directory in modules if directory not in checked]:
        for directory in unchecked:
            checked.add(directory)
            findings.extend(check_module(schema, modules[directory], modules=modules, display_root=shown))
    return sorted(set(findings), key=order)
