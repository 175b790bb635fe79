"""A Terraform module directory as the checker sees it, read with python-hcl2.

python-hcl2 (8.x) returns every block as a dict marked ``__is_block__`` inside a list, keeps the quotes of
string literals and of block labels, and wraps expressions in ``${...}``. This module turns that into
bodies of attributes and nested blocks (``dynamic "x" { content {...} }`` becomes a nested block ``x``
marked dynamic), and collects what module calls and references are checked against: variables, outputs,
locals, module calls, required provider versions.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hcl2
from hcl2.utils import SerializationOptions

BLOCK_MARKER = "__is_block__"
DYNAMIC = "dynamic"
DYNAMIC_CONTENT = "content"
TERRAFORM_SUFFIX = ".tf"
# python-hcl2 serialisation: no comments (they would appear as keys), blocks marked.
PARSE_OPTIONS = SerializationOptions(with_comments=False, explicit_blocks=True)


def unquote(value: Any) -> Any:
    """A string literal's text (``'"x"'`` -> ``'x'``); expressions and other values unchanged."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def _is_block_list(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(i, dict) and i.get(BLOCK_MARKER) for i in value)


def _is_labelled_block_list(value: Any) -> bool:
    """``dynamic "x" {...}``, ``provisioner "local-exec" {...}``: the marker is on the body under the label."""
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(item, dict) and _is_block_list(list(item.values())) for item in value)
    )


@dataclass(frozen=True)
class Body:
    """One block's body: its attributes by name and its nested blocks in order."""

    attributes: Mapping[str, Any]
    blocks: tuple[NestedBlock, ...] = ()

    def blocks_named(self, name: str) -> list[NestedBlock]:
        return [block for block in self.blocks if block.type == name]


@dataclass(frozen=True)
class NestedBlock:
    """A nested block; for a dynamic block, ``body`` is its ``content`` and ``generator`` the rest."""

    type: str
    body: Body
    dynamic: bool = False
    generator: Mapping[str, Any] = field(default_factory=dict)
    has_content: bool = True


def parse_body(raw: Mapping[str, Any]) -> Body:
    attributes: dict[str, Any] = {}
    blocks: list[NestedBlock] = []
    for key, value in raw.items():
        if key.startswith("__"):
            continue
        if _is_labelled_block_list(value):
            for labelled in value:
                for label, inner in labelled.items():
                    if label.startswith("__"):
                        continue
                    if key == DYNAMIC:
                        blocks.append(_dynamic_block(unquote(label), inner))
                    else:
                        blocks.append(NestedBlock(type=key, body=parse_body(inner)))
        elif _is_block_list(value):
            blocks.extend(NestedBlock(type=key, body=parse_body(item)) for item in value)
        else:
            attributes[key] = value
    return Body(attributes=attributes, blocks=tuple(blocks))


def _dynamic_block(block_type: str, raw: Mapping[str, Any]) -> NestedBlock:
    generator = parse_body(raw)
    contents = generator.blocks_named(DYNAMIC_CONTENT)
    return NestedBlock(
        type=block_type,
        body=contents[0].body if contents else Body(attributes={}),
        dynamic=True,
        generator=generator.attributes,
        has_content=len(contents) == 1,
    )


@dataclass(frozen=True)
class Source:
    """Where a top-level block is written, for messages: path (as given) and 1-based line."""

    path: Path
    line: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}"


@dataclass(frozen=True)
class TopBlock:
    """A labelled top-level block: ``resource "aws_x" "name"``, ``data``, ``module``, ``provider``."""

    keyword: str
    labels: tuple[str, ...]
    body: Body
    source: Source

    @property
    def address(self) -> str:
        prefix = "" if self.keyword == "resource" else f"{self.keyword}."
        return prefix + ".".join(self.labels)


@dataclass
class Module:
    """Everything one directory of .tf files declares."""

    directory: Path
    resources: list[TopBlock] = field(default_factory=list)
    data_sources: list[TopBlock] = field(default_factory=list)
    providers: list[TopBlock] = field(default_factory=list)
    module_calls: list[TopBlock] = field(default_factory=list)
    variables: dict[str, Body] = field(default_factory=dict)
    outputs: set[str] = field(default_factory=set)
    locals: set[str] = field(default_factory=set)
    required_providers: dict[str, tuple[str, Source]] = field(default_factory=dict)
    # Every expression-bearing value, with the top-level block it sits in, for reference checks.
    values: list[tuple[Any, str, Source]] = field(default_factory=list)

    def declares(self, address: str) -> bool:
        return any(block.address == address for block in (*self.resources, *self.data_sources))


class HclError(ValueError):
    """A .tf file python-hcl2 cannot parse."""


def _line_of(text: str, *, keyword: str, labels: tuple[str, ...], occurrence: int = 0) -> int:
    """The line of the ``occurrence``-th header ``keyword "label"... {`` (unlabelled blocks repeat)."""
    header = r"\s+".join([re.escape(keyword), *(rf'"?{re.escape(label)}"?' for label in labels)])
    matches = list(re.finditer(rf"^[ \t]*{header}\s*\{{", text, flags=re.MULTILINE))
    if occurrence >= len(matches):
        return 1
    return text.count("\n", 0, matches[occurrence].start()) + 1


def _labelled(raw: Mapping[str, Any], depth: int) -> Iterator[tuple[tuple[str, ...], Mapping[str, Any]]]:
    """``{'"a"': {'"b"': body}}`` -> ``(("a", "b"), body)`` for blocks with ``depth`` labels."""
    if depth == 0:
        yield (), raw
        return
    for label, inner in raw.items():
        if not label.startswith("__"):
            for rest, body in _labelled(inner, depth - 1):
                yield (unquote(label), *rest), body


LABELS = {"resource": 2, "data": 2, "module": 1, "provider": 1, "variable": 1, "output": 1}


def _read_file(module: Module, path: Path, *, display: Path) -> None:
    text = path.read_text(encoding="utf-8")
    try:
        parsed = hcl2.loads(text, serialization_options=PARSE_OPTIONS)
    except Exception as error:  # python-hcl2 raises lark's and its own errors alike
        raise HclError(f"{display}: cannot parse: {error}") from error
    for keyword, entries in parsed.items():
        if keyword.startswith("__"):
            continue
        for occurrence, entry in enumerate(entries):
            if keyword in LABELS:
                for labels, raw in _labelled(entry, LABELS[keyword]):
                    source = Source(display, _line_of(text, keyword=keyword, labels=labels))
                    _declare(module, keyword, labels, raw, source=source)
                continue
            source = Source(display, _line_of(text, keyword=keyword, labels=(), occurrence=occurrence))
            if keyword == "locals":
                names = [name for name in entry if not name.startswith("__")]
                module.locals.update(names)
                module.values.extend((entry[name], f"local.{name}", source) for name in names)
            elif keyword == "terraform":
                _read_terraform_block(module, parse_body(entry), source=source)


def _declare(module: Module, keyword: str, labels: tuple[str, ...], raw: Mapping[str, Any], *, source: Source) -> None:
    body = parse_body(raw)
    block = TopBlock(keyword=keyword, labels=labels, body=body, source=source)
    if keyword == "variable":
        module.variables[labels[0]] = body
    elif keyword == "output":
        module.outputs.add(labels[0])
    else:
        declared = {
            "resource": module.resources,
            "data": module.data_sources,
            "module": module.module_calls,
            "provider": module.providers,
        }
        declared[keyword].append(block)
    module.values.append((raw, block.address, source))


def _read_terraform_block(module: Module, body: Body, *, source: Source) -> None:
    for required in body.blocks_named("required_providers"):
        for name, requirement in required.body.attributes.items():
            if isinstance(requirement, dict) and "version" in requirement:
                module.required_providers[name] = (str(unquote(requirement["version"])), source)


def load_module(directory: Path, *, display_root: Path | None = None) -> Module:
    """Every .tf file directly in ``directory``; paths in messages relative to ``display_root``."""
    module = Module(directory=directory)
    for path in sorted(directory.glob(f"*{TERRAFORM_SUFFIX}")):
        display = Path(os.path.relpath(path, display_root)) if display_root else path
        _read_file(module, path, display=display)
    return module


def module_directories(root: Path) -> list[Path]:
    """The root module and every directory below it holding .tf files (``.terraform`` excluded)."""
    directories = {path.parent for path in root.rglob(f"*{TERRAFORM_SUFFIX}") if ".terraform" not in path.parts}
    return sorted(directories)
