"""Calls of local modules against the variables the called module declares.

Only ``./`` and ``../`` sources are read (registry and Git modules are not on disk before
``terraform init``). A call passes declared variables only, and every variable declared without a
default; called modules are loaded once and shared with the reference checks, which need their outputs.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from infra.lint.provider_schema.findings import Finding, finding_in, suggest
from infra.lint.provider_schema.hcl import Module, TopBlock, load_module, unquote

MODULE_META_ARGUMENTS = frozenset({"source", "version", "count", "for_each", "depends_on", "providers"})
LOCAL_SOURCE_PREFIXES = ("./", "../")


def local_module_directory(module: Module, call: TopBlock) -> Path | None:
    """The resolved directory of a call's local source, or None for any other source."""
    source = unquote(call.body.attributes.get("source", ""))
    if isinstance(source, str) and source.startswith(LOCAL_SOURCE_PREFIXES):
        return (module.directory / source).resolve()
    return None


def called_module(module: Module, call: TopBlock, *, modules: dict[Path, Module], display_root: Path) -> Module | None:
    """The module a call reads from disk, loaded into ``modules`` on first use; None when not local or absent."""
    directory = local_module_directory(module, call)
    if directory is None or not directory.is_dir():
        return None
    if directory not in modules:
        modules[directory] = load_module(directory, display_root=display_root)
    return modules[directory]


def check_module_call(
    module: Module, call: TopBlock, *, modules: dict[Path, Module], display_root: Path
) -> Iterator[Finding]:
    directory = local_module_directory(module, call)
    if directory is None:
        return
    called = called_module(module, call, modules=modules, display_root=display_root)
    if called is None:
        yield finding_in(call, f"source {unquote(call.body.attributes['source'])}: no such module directory")
        return
    declared = sorted(called.variables)
    for name in call.body.attributes:
        if name not in MODULE_META_ARGUMENTS and name not in called.variables:
            yield finding_in(call, f"module has no variable {name}{suggest(name, declared)}")
    for name, variable in called.variables.items():
        if "default" not in variable.attributes and name not in call.body.attributes:
            yield finding_in(call, f"missing required variable {name} (it has no default)")
    for block in call.body.blocks:
        yield finding_in(call, f"unsupported block {block.type}: a module call takes arguments only")
