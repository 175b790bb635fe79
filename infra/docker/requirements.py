"""Per-image requirement files, generated from Pipfile.lock so that each image holds only what it runs.

An image needs the distributions that its code imports (found by reading the imports of its entry
modules and of every project module they reach), the ones it needs at run time without importing
them (named in ``IMAGES`` with the reason), and their dependencies for the image's platform. Each is
pinned to the version and hashes of Pipfile.lock, so an image never resolves anything on its own.

    python -m infra.docker.requirements           # write infra/docker/requirements-<image>.txt
    python -m infra.docker.requirements --check   # exit 1 when a file differs from the lock

The dependency graph is read from the installed metadata of the locked environment (``make setup``),
which must match the lock's versions.
"""

from __future__ import annotations

import argparse
import ast
import importlib.metadata
import json
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name

REPO_ROOT = Path(__file__).resolve().parents[2]
LOCK_FILE = REPO_ROOT / "Pipfile.lock"
OUTPUT_DIR = REPO_ROOT / "infra" / "docker"
PROJECT_PACKAGES = frozenset(
    {"churn_common", "producer", "stream_scorer", "batch_monitor", "data", "training", "infra"}
)

# The images are python:3.11 slim on linux/amd64 (see the Dockerfiles).
TARGET_ENVIRONMENT: dict[str, str] = {
    "implementation_name": "cpython",
    "implementation_version": "3.11.14",
    "os_name": "posix",
    "platform_machine": "x86_64",
    "platform_python_implementation": "CPython",
    "platform_system": "Linux",
    "python_full_version": "3.11.14",
    "python_version": "3.11",
    "sys_platform": "linux",
}

# Top-level import names that several installed distributions provide: the one an image should get.
IMPORT_OWNERS: dict[str, str] = {
    # mlflow, mlflow-skinny and mlflow-tracing all install the `mlflow` package; the client API
    # (MlflowClient, mlflow.artifacts) is complete in mlflow-skinny, without the server's dependencies.
    "mlflow": "mlflow-skinny",
    "google": "protobuf",
}


@dataclass(frozen=True)
class ImageSpec:
    """What one image runs: entry modules and scripts, plus distributions needed without an import."""

    modules: tuple[str, ...]
    scripts: tuple[str, ...] = ()
    runtime: Mapping[str, str] = field(default_factory=dict)
    copied_packages: frozenset[str] = frozenset()


IMAGES: dict[str, ImageSpec] = {
    "producer": ImageSpec(
        modules=("producer.handler",),
        runtime={"six": "aws-kinesis-agg imports it without declaring it"},
        copied_packages=frozenset({"churn_common", "producer"}),
    ),
    "stream_scorer": ImageSpec(
        modules=("stream_scorer.handler",),
        scripts=("infra/docker/entrypoint.py",),
        runtime={
            "six": "aws-kinesis-agg imports it without declaring it",
            "psycopg": "the postgresql+psycopg driver that SQLAlchemy loads for DATABASE_URL",
        },
        copied_packages=frozenset({"churn_common", "stream_scorer"}),
    ),
    "batch_monitor": ImageSpec(
        modules=("batch_monitor.flow",),
        scripts=("infra/docker/entrypoint.py",),
        runtime={
            "mlflow": "the same image runs the MLflow tracking server (`mlflow server`)",
            "prefect": "the same image runs the Prefect server and worker",
            "psycopg": "the postgresql+psycopg driver of DATABASE_URL and of MLflow's backend store",
            "pyarrow": "pandas.read_parquet of the model's reference data",
        },
        copied_packages=frozenset({"churn_common", "batch_monitor", "training"}),
    ),
}


class LockMismatchError(RuntimeError):
    """An image needs something that Pipfile.lock or its Dockerfile does not provide."""


# ---------------------------------------------------------------------------------------------------
# Imports of the project's code
# ---------------------------------------------------------------------------------------------------


def _is_type_checking_block(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def imported_names(source: str) -> Iterator[str]:
    """Absolute module names imported anywhere in ``source`` (lazy imports too), except TYPE_CHECKING ones."""
    pending: list[ast.AST] = [ast.parse(source)]
    while pending:
        node = pending.pop()
        if _is_type_checking_block(node):
            continue
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)
        pending.extend(ast.iter_child_nodes(node))


def _module_file(module: str, root: Path) -> Path | None:
    base = root.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


LAZY_EXPORTS = "_EXPORTS"


def lazy_exports(source: str) -> dict[str, str]:
    """A package's lazily loaded names and their modules (``churn_common.public_api``): ``from package import
    name`` imports that module only when the name is used, so the scan must follow the mapping."""
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == LAZY_EXPORTS for target in node.targets
        ):
            return dict(ast.literal_eval(node.value))
    return {}


def _with_parents(module: str) -> Iterator[str]:
    parts = module.split(".")
    for end in range(1, len(parts) + 1):
        yield ".".join(parts[:end])


@dataclass(frozen=True)
class CodeImports:
    project_modules: frozenset[str]
    third_party: frozenset[str]  # top-level import names


def scan_imports(spec: ImageSpec, *, root: Path = REPO_ROOT) -> CodeImports:
    """Follow the project's own imports from the entry points; collect every other top-level name."""
    seen: set[str] = set()
    third_party: set[str] = set()
    pending = [name for module in spec.modules for name in _with_parents(module)]
    sources = [(root / script).read_text() for script in spec.scripts]
    while pending or sources:
        if sources:
            names = imported_names(sources.pop())
        else:
            module = pending.pop()
            if module in seen:
                continue
            seen.add(module)
            path = _module_file(module, root)
            if path is None:  # an attribute imported with `from package import name`, perhaps a lazy one
                package, _, attribute = module.rpartition(".")
                init = _module_file(package, root) if package else None
                lazy = lazy_exports(init.read_text()).get(attribute) if init else None
                pending.extend(_with_parents(lazy) if lazy else ())
                continue
            names = imported_names(path.read_text())
        for name in names:
            top = name.split(".")[0]
            if top in PROJECT_PACKAGES:
                pending.extend(_with_parents(name))
            elif top not in sys.stdlib_module_names and top != "__future__":
                third_party.add(top)
    existing = {m for m in seen if _module_file(m, root) is not None}
    return CodeImports(project_modules=frozenset(existing), third_party=frozenset(third_party))


@lru_cache(maxsize=1)
def _installed_import_names() -> Mapping[str, list[str]]:
    return importlib.metadata.packages_distributions()


def distribution_of(import_name: str) -> NormalizedName:
    if import_name in IMPORT_OWNERS:
        return canonicalize_name(IMPORT_OWNERS[import_name])
    owners = sorted({canonicalize_name(d) for d in _installed_import_names().get(import_name, [])})
    if len(owners) != 1:
        raise LockMismatchError(
            f"`import {import_name}` is provided by {owners or 'no installed distribution'}: "
            "name its distribution in IMPORT_OWNERS"
        )
    return owners[0]


# ---------------------------------------------------------------------------------------------------
# Dependency closure pinned from the lock
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LockedPackage:
    name: NormalizedName
    version: str
    hashes: tuple[str, ...]
    extras: tuple[str, ...]


def read_lock(path: Path = LOCK_FILE) -> dict[NormalizedName, LockedPackage]:
    default = json.loads(path.read_text())["default"]
    return {
        canonicalize_name(name): LockedPackage(
            name=canonicalize_name(name),
            version=entry["version"].removeprefix("=="),
            hashes=tuple(sorted(entry.get("hashes", []))),
            extras=tuple(sorted(entry.get("extras", []))),
        )
        for name, entry in default.items()
    }


def _applies(requirement: Requirement, extra: str) -> bool:
    """Whether a dependency counts for the base distribution ("") or for one of its extras."""
    if requirement.marker is None:
        return not extra
    if extra and "extra" not in str(requirement.marker):
        return False
    return requirement.marker.evaluate({**TARGET_ENVIRONMENT, "extra": extra})


@dataclass(frozen=True)
class Pin:
    name: NormalizedName
    version: str
    hashes: tuple[str, ...]
    extras: tuple[str, ...]  # requested by a parent or the lock: pip's hash mode wants them on the pin
    needed_by: tuple[str, ...]

    def render(self) -> str:
        """The pin, and again with its extras: pip's hash mode needs both the plain and the extras requirement."""
        names = [self.name, *([f"{self.name}[{','.join(self.extras)}]"] if self.extras else [])]
        hashes = [f"    --hash={digest}" for digest in self.hashes]
        pins = [" \\\n".join([f"{name}=={self.version}", *hashes]) for name in names]
        return "\n".join(pins) + f"\n    # via {', '.join(self.needed_by)}"


def dependency_closure(roots: Mapping[NormalizedName, str], lock: Mapping[NormalizedName, LockedPackage]) -> list[Pin]:
    """Every distribution the roots need on the target platform, pinned, with what needs it."""
    needed_by: dict[NormalizedName, set[str]] = {}
    expanded: dict[NormalizedName, set[str]] = {}
    pending: list[tuple[NormalizedName, frozenset[str], str]] = [
        (name, frozenset({"", *(lock[name].extras if name in lock else ())}), why) for name, why in roots.items()
    ]
    while pending:
        name, extras, why = pending.pop()
        if name not in lock:
            raise LockMismatchError(f"{name} (needed by {why}) is not in the default packages of Pipfile.lock")
        needed_by.setdefault(name, set()).add(why)
        new = extras - expanded.setdefault(name, set())
        if not new:
            continue
        expanded[name] |= new
        installed = importlib.metadata.version(name)
        if installed != lock[name].version:
            raise LockMismatchError(f"{name} {installed} is installed but Pipfile.lock has {lock[name].version}")
        for line in importlib.metadata.requires(name) or []:
            requirement = Requirement(line)
            if any(_applies(requirement, extra) for extra in new):
                pending.append((canonicalize_name(requirement.name), frozenset({"", *requirement.extras}), name))
    return [
        Pin(
            name=name,
            version=lock[name].version,
            hashes=lock[name].hashes,
            extras=tuple(sorted(expanded[name] - {""})),
            needed_by=tuple(sorted(needed_by[name])),
        )
        for name in sorted(needed_by)
    ]


def image_roots(spec: ImageSpec, imports: CodeImports) -> dict[NormalizedName, str]:
    roots = {distribution_of(name): f"import {name}" for name in sorted(imports.third_party)}
    for name, reason in spec.runtime.items():
        roots.setdefault(canonicalize_name(name), reason)
    return roots


def render(image: str, pins: Iterable[Pin]) -> str:
    header = [
        f"# {image} image: generated from Pipfile.lock by `python -m infra.docker.requirements`; do not edit.",
        "# What its code imports, what it runs without importing, and their dependencies (linux, CPython 3.11).",
    ]
    return "\n".join([*header, *(pin.render() for pin in pins)]) + "\n"


def generate(
    image: str,
    lock: Mapping[NormalizedName, LockedPackage] | None = None,
    *,
    spec: ImageSpec | None = None,
    root: Path = REPO_ROOT,
) -> str:
    """The requirement file of ``image`` (``spec`` and ``root`` default to the project's)."""
    spec = spec or IMAGES[image]
    lock = lock if lock is not None else read_lock()
    imports = scan_imports(spec, root=root)
    outside = {m.split(".")[0] for m in imports.project_modules} - spec.copied_packages
    if outside:
        raise LockMismatchError(f"{image} imports {sorted(outside)}, which its Dockerfile does not copy")
    return render(image, dependency_closure(image_roots(spec, imports), lock))


def output_path(image: str) -> Path:
    return OUTPUT_DIR / f"requirements-{image}.txt"


def _shown(path: Path) -> Path:
    return path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 when a file is out of date")
    args = parser.parse_args(argv)
    lock = read_lock()
    stale = []
    for image in IMAGES:
        try:
            text, path = generate(image, lock), output_path(image)
        except LockMismatchError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        if path.exists() and path.read_text() == text:
            continue
        if args.check:
            stale.append(_shown(path))
        else:
            path.write_text(text)
            print(f"wrote {_shown(path)}")
    for path in stale:
        print(f"{path} is out of date with Pipfile.lock: run `python -m infra.docker.requirements`", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
