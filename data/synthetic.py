"""Synthetic churn batches: the public generator API and the command line that writes them.

Usage::

    python -m data.synthetic generate --rows 500 --seed 7 --drift seconds_of_use=1.0 status=0.5 --out batch.csv
    python -m data.synthetic generate --rows 500 --base reference.csv --label-noise 0.3 --out noisy.csv
    python -m data.synthetic generate --rows 500 --customer-ids --out customers.csv
    python -m data.synthetic samples          # rewrite the bundled files in data/samples/
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from data.bundled import SAMPLES_DIR, write_bundled_samples
from data.churn_csv import read_churn_csv, write_churn_csv
from data.drift import strong_drift
from data.generator import DEFAULT_SEED, generate

__all__ = ["DEFAULT_SEED", "generate", "main", "strong_drift"]

DEFAULT_ROWS = 1000


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "samples":
        for path in write_bundled_samples(args.dir):
            print(path)
        return 0
    try:
        rows = generate(
            n_rows=args.rows,
            seed=args.seed,
            drift=dict(args.drift),
            label_noise=args.label_noise,
            base=read_churn_csv(args.base) if args.base else None,
            with_label=not args.no_label,
            with_customer_id=args.customer_ids,
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    write_churn_csv(rows, args.out, original_headers=not args.normalised_headers)
    print(f"wrote {len(rows)} rows to {args.out}")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m data.synthetic", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    batch = commands.add_parser("generate", help="write one synthetic batch")
    batch.add_argument("--rows", type=int, default=DEFAULT_ROWS)
    batch.add_argument("--seed", type=int, default=DEFAULT_SEED)
    batch.add_argument("--drift", type=_drift_item, nargs="+", action="extend", default=[], metavar="COLUMN=STRENGTH")
    batch.add_argument("--label-noise", type=float, default=0.0, help="fraction of labels flipped")
    batch.add_argument("--base", type=Path, help="resample this CSV instead of the parametric model")
    batch.add_argument("--no-label", action="store_true", help="omit the churn column, like a live stream")
    batch.add_argument("--customer-ids", action="store_true", help="add a customer_id column (C<seed>-<row>)")
    batch.add_argument("--normalised-headers", action="store_true", help="write snake_case column names")
    batch.add_argument("--out", type=Path, required=True)

    samples = commands.add_parser("samples", help="rewrite the bundled sample files")
    samples.add_argument("--dir", type=Path, default=SAMPLES_DIR)
    return parser


def _drift_item(text: str) -> tuple[str, float]:
    column, sep, strength = text.partition("=")
    try:
        if not sep:
            raise ValueError
        return column.strip(), float(strength)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected COLUMN=STRENGTH, got {text!r}") from None


if __name__ == "__main__":
    sys.exit(main())
