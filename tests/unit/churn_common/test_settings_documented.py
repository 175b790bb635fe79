"""The README's configuration table names every environment variable the settings read, and nothing else."""

from __future__ import annotations

import re
from pathlib import Path

from churn_common.settings import Settings

README = Path(__file__).resolve().parents[3] / "README.md"
SECTION = re.compile(r"^## Configuration\n(?P<body>.*?)^## ", re.MULTILINE | re.DOTALL)
FIRST_CELL = re.compile(r"^\| (?P<cell>[^|]+) \|", re.MULTILINE)
NAME = re.compile(r"`([A-Z][A-Z0-9_]*)`")


def test_every_setting_has_a_row_in_the_configuration_table() -> None:
    section = SECTION.search(README.read_text())
    assert section, "README.md has no Configuration section"
    documented = {name for cell in FIRST_CELL.findall(section["body"]) for name in NAME.findall(cell)}
    variables = {field.alias for field in Settings.model_fields.values() if field.alias}
    assert variables - documented == set(), "settings missing from the README table"
    assert documented - variables == set(), "README rows that no setting reads"
