"""Resource, data source and provider blocks against their schema, nested blocks included.

Every argument and nested block (``dynamic`` ones by their content) must exist where it is written, be
written as what it is (``x = ...`` for an argument, ``x { }`` for a block; object-typed arguments such as
security group rules accept both, as Terraform does), and not be one that only the provider sets; a block
that may appear once appears once; required arguments and blocks are present (a dynamic block counts).
Meta-arguments are Terraform's, not the provider's, and are skipped. Types of other providers (``random_``)
are not checked.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

from infra.lint.provider_schema.findings import Finding, finding_in, suggest
from infra.lint.provider_schema.hcl import Body, NestedBlock, TopBlock
from infra.lint.provider_schema.schema import Kind, ProviderSchema, Struct

PROVIDER = "aws"
TYPE_PREFIX = f"{PROVIDER}_"
RESOURCE_META_ARGUMENTS = frozenset({"count", "for_each", "depends_on", "provider"})
RESOURCE_META_BLOCKS = frozenset({"lifecycle", "provisioner", "connection"})
DATA_META_ARGUMENTS = RESOURCE_META_ARGUMENTS
DATA_META_BLOCKS = frozenset({"lifecycle"})
PROVIDER_META_ARGUMENTS = frozenset({"alias", "version"})
DYNAMIC_ARGUMENTS = frozenset({"for_each", "iterator", "labels"})


@dataclass(frozen=True)
class _Walk:
    schema: ProviderSchema
    block: TopBlock

    def finding(self, path: str, message: str) -> Finding:
        return finding_in(self.block, message, path=path)


def _check_body(
    walk: _Walk,
    struct: Struct,
    body: Body,
    *,
    path: str = "",
    meta_arguments: frozenset[str] = frozenset(),
    meta_blocks: frozenset[str] = frozenset(),
) -> Iterator[Finding]:
    known = sorted(struct.arguments)
    for name in body.attributes:
        if name in meta_arguments:
            continue
        argument = struct.arguments.get(name)
        if argument is None:
            yield walk.finding(path, _unknown(struct, name, f"unsupported argument {name}", known))
        elif argument.kind is Kind.BLOCK:
            yield walk.finding(path, f"{name} is a block: write `{name} {{ ... }}`, not `{name} = ...`")
    for name, count in Counter(block.type for block in body.blocks if not block.dynamic).items():
        argument = struct.arguments.get(name)
        if argument is not None and argument.kind is Kind.BLOCK and not argument.repeatable and count > 1:
            yield walk.finding(path, f"at most one {name} block is allowed, found {count}")
    for block in body.blocks:
        if block.dynamic or block.type not in meta_blocks:
            yield from _check_nested(walk, struct, block, path=path, known=known)
    present = set(body.attributes) | {block.type for block in body.blocks}
    for name, argument in struct.arguments.items():
        if argument.required and name not in present:
            what = "block" if argument.kind is Kind.BLOCK else "argument"
            yield walk.finding(path, f"missing required {what} {name}")


def _unknown(struct: Struct, name: str, message: str, known: list[str]) -> str:
    if struct.is_computed(name):
        return f"{name} is computed-only: the provider sets it, it cannot be written"
    return message + suggest(name, known)


def _check_nested(walk: _Walk, struct: Struct, block: NestedBlock, *, path: str, known: list[str]) -> Iterator[Finding]:
    here = f"{path}.{block.type}" if path else block.type
    argument = struct.arguments.get(block.type)
    if argument is None:
        label = f'dynamic "{block.type}"' if block.dynamic else f"block {block.type}"
        yield walk.finding(path, _unknown(struct, block.type, f"unsupported {label}", known))
        return
    if argument.kind is Kind.ATTRIBUTE:
        yield walk.finding(path, f"{block.type} is an argument: write `{block.type} = ...`, not a block")
        return
    if block.dynamic:
        yield from _check_dynamic(walk, block, path=here)
    if argument.struct is not None:
        yield from _check_body(walk, walk.schema.struct(argument.struct), block.body, path=here)


def _check_dynamic(walk: _Walk, block: NestedBlock, *, path: str) -> Iterator[Finding]:
    if not block.has_content:
        yield walk.finding(path, 'a dynamic block needs exactly one "content" block')
    if "for_each" not in block.generator:
        yield walk.finding(path, "missing required argument for_each of the dynamic block")
    for name in block.generator:
        if name not in DYNAMIC_ARGUMENTS:
            yield walk.finding(path, f"unsupported argument {name} of a dynamic block (it goes in content {{}})")


def check_typed_block(schema: ProviderSchema, block: TopBlock) -> Iterator[Finding]:
    """A ``resource`` or ``data`` block."""
    type_name = block.labels[0]
    if not type_name.startswith(TYPE_PREFIX):
        return
    walk = _Walk(schema=schema, block=block)
    is_resource = block.keyword == "resource"
    struct = schema.resource(type_name) if is_resource else schema.data_source(type_name)
    if struct is None:
        kind = "resource type" if is_resource else "data source"
        known = list(schema.resources if is_resource else schema.data_sources)
        yield walk.finding("", f"unknown {kind} {type_name} in {schema.package}{suggest(type_name, known)}")
        return
    yield from _check_body(
        walk,
        struct,
        block.body,
        meta_arguments=RESOURCE_META_ARGUMENTS if is_resource else DATA_META_ARGUMENTS,
        meta_blocks=RESOURCE_META_BLOCKS if is_resource else DATA_META_BLOCKS,
    )


def check_provider_block(schema: ProviderSchema, block: TopBlock) -> Iterator[Finding]:
    if block.labels[0] == PROVIDER:
        walk = _Walk(schema=schema, block=block)
        yield from _check_body(walk, schema.provider_config(), block.body, meta_arguments=PROVIDER_META_ARGUMENTS)
