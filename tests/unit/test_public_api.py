"""Each component package has a small public face, and code outside a component uses only that face.

``__all__`` is read from each package and held to what the package offers (every name loads, ``dir`` shows
it); the import rule is checked on the source, independently of the packages' own lazy loading.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPONENTS = ("producer", "stream_scorer", "batch_monitor", "training")
PRODUCTION_CODE = ("producer", "stream_scorer", "batch_monitor", "training", "churn_common", "infra", "data")


def _source_files() -> list[Path]:
    return sorted(path for top in PRODUCTION_CODE for path in (REPO_ROOT / top).rglob("*.py"))


def _component_of(module: str) -> str | None:
    top = module.split(".", 1)[0]
    return top if top in COMPONENTS else None


def _reaches(source: str, *, own: str) -> list[str]:
    """Imports in ``source`` (code of the top-level package ``own``) of another component's names: ``pkg.sub``
    for a reach past its face, else ``pkg:name`` for a name imported from the package root."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            component = _component_of(node.module)
            if component and component != own:
                found += [node.module] if "." in node.module else [f"{component}:{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            found += [a.name for a in node.names if _component_of(a.name) not in (None, own) and "." in a.name]
    return found


@pytest.mark.parametrize("package", COMPONENTS)
def test_every_exported_name_loads_and_is_listed(package: str) -> None:
    # GIVEN a component package
    module = importlib.import_module(package)
    # THEN its __all__ is sorted and unique, every name in it loads, and dir() lists it
    assert module.__all__ == sorted(set(module.__all__))
    for name in module.__all__:
        assert getattr(module, name) is not None, name
    assert set(module.__all__) <= set(dir(module))
    # AND a name it does not offer is an AttributeError naming the package
    with pytest.raises(AttributeError, match=f"module '{package}' has no attribute 'not_offered'"):
        _ = module.not_offered


@pytest.mark.parametrize("package", COMPONENTS)
def test_exported_names_are_the_defining_modules_own_objects(package: str) -> None:
    # GIVEN a component package WHEN a name is taken from it THEN it is the very object its module defines
    module = importlib.import_module(package)
    for name in module.__all__:
        defining = importlib.import_module(module._EXPORTS[name])
        assert getattr(module, name) is getattr(defining, name)


def test_code_outside_a_component_imports_only_its_public_names() -> None:
    # GIVEN every production module of the repository
    offered = {package: set(importlib.import_module(package).__all__) for package in COMPONENTS}
    reaches: dict[str, list[str]] = {}
    for path in _source_files():
        bad = [
            reach
            for reach in _reaches(path.read_text(), own=path.relative_to(REPO_ROOT).parts[0])
            if ":" not in reach or reach.split(":")[1] not in offered[reach.split(":")[0]]
        ]
        if bad:
            reaches[str(path.relative_to(REPO_ROOT))] = bad
    # THEN none reaches into another component's modules or imports a name its face does not offer
    assert reaches == {}


def test_the_check_finds_a_reach_into_a_component() -> None:
    # GIVEN harness code importing a producer internal, a public name, a monitor module and its own module
    source = "\n".join(
        [
            "from producer.splitter import split_csv",
            "from producer import KinesisWriter",
            "import batch_monitor.flow",
            "from infra.local.driver import upload",
        ]
    )
    # WHEN checked THEN the two reaches and the public name are reported, and the harness's own import is not
    assert _reaches(source, own="infra") == ["producer.splitter", "producer:KinesisWriter", "batch_monitor.flow"]
    # AND a component's imports of its own modules are its own business
    assert _reaches("from producer.splitter import split_csv", own="producer") == []
