"""``python -m infra.lint.provider_schema [TERRAFORM_DIR]``: the check `make lint` runs.

Prints one line per finding (``file:line: address: message``) and exits 1 when there is any, 2 when the
schema is not cached (the message names the make target that fetches it).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from infra.lint.provider_schema.check import check_configuration
from infra.lint.provider_schema.hcl import HclError, module_directories
from infra.lint.provider_schema.pin import REPO_ROOT, SCHEMA_FILE
from infra.lint.provider_schema.schema import SchemaUnavailableError, load_schema

DEFAULT_TERRAFORM_DIR = REPO_ROOT / "infra" / "terraform"
EXIT_FINDINGS = 1
EXIT_NO_SCHEMA = 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.lint.provider_schema", description=__doc__.splitlines()[0])
    parser.add_argument("directory", nargs="?", type=Path, default=DEFAULT_TERRAFORM_DIR)
    parser.add_argument("--schema", type=Path, default=SCHEMA_FILE, help="cached schema (make provider-schema)")
    args = parser.parse_args(argv)
    try:
        schema = load_schema(path=args.schema)
    except SchemaUnavailableError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_NO_SCHEMA
    directory: Path = args.directory
    if not module_directories(directory):
        print(f"error: no .tf files in or below {directory}", file=sys.stderr)
        return EXIT_FINDINGS
    try:
        findings = check_configuration(directory, schema=schema, display_root=Path.cwd())
    except HclError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_FINDINGS
    for finding in findings:
        print(finding)
    shown = os.path.relpath(directory)
    against = f"{schema.package}, hashicorp/aws {schema.provider_version}"
    print(f"provider schema: {len(findings)} finding(s) in {shown} ({against})")
    return EXIT_FINDINGS if findings else 0


if __name__ == "__main__":
    sys.exit(main())
