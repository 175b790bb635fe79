"""Runs the benchmarks named on the command line (default: all) and writes their JSON results."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from typing import Any

from churn_common.settings import get_settings
from tests.benchmarks import big_file_benchmark, e2e_benchmark, monitor_benchmark, producer_benchmark, scorer_benchmark

BENCHMARKS: dict[str, Callable[[], dict[str, Any]]] = {
    "scorer": scorer_benchmark.run,
    "producer": producer_benchmark.run,
    "monitor": monitor_benchmark.run,
    "e2e": e2e_benchmark.run,
    "big-file": big_file_benchmark.run,
}
# Run by default; the others only when named (``python -m tests.benchmarks big-file``).
DEFAULT = ("scorer", "producer", "monitor", "e2e")


def main(names: list[str]) -> None:
    logging.basicConfig(level=logging.WARNING)
    target = get_settings().local_state_dir / "bench"
    target.mkdir(parents=True, exist_ok=True)
    for name in names or DEFAULT:
        print(f"benchmark {name} ...", flush=True)
        result = BENCHMARKS[name]()
        path = target / f"{name}.json"
        path.write_text(json.dumps(result, indent=2))
        print(json.dumps(result, indent=2))
        print(f"-> {path}")


if __name__ == "__main__":
    main(sys.argv[1:])
