"""Terraform files as python-hcl2 reads them, made comparable to plain values."""

from __future__ import annotations

from typing import Any


def clean(value: Any) -> Any:
    """python-hcl2 >= 8 keeps the quotes of string literals and adds __meta__ keys; older versions do not."""
    if isinstance(value, dict):
        return {clean(key): clean(item) for key, item in value.items() if not str(key).startswith("__")}
    if isinstance(value, list):
        return [clean(item) for item in value]
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value
