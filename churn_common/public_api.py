"""Lazy public faces for the component packages.

A package names what it offers in one mapping (name -> defining module), and each name loads on first use:
``import producer`` costs a Lambda cold start nothing its handler does not already import, and reaching
``batch_monitor.core`` does not pull Prefect in through the package. Callers in other packages import from the
package itself; the modules behind it stay free to move.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(package: str, exports: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of ``package`` (PEP 562) for ``exports``."""

    def __getattr__(name: str) -> Any:  # noqa: N807
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(import_module(module), name)

    def __dir__() -> list[str]:  # noqa: N807
        return sorted({*vars(import_module(package)), *exports})

    return __getattr__, __dir__
