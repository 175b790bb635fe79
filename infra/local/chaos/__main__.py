"""``python -m infra.local.chaos`` (``make chaos``): stream at least 100,000 rows through the local stack
under injected faults, reconcile, write ``.local/bench/chaos.json``; exit 1 when an invariant fails."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from churn_common.redaction import redact
from churn_common.settings import get_settings
from infra.local.chaos.options import (
    DEFAULT_LATENESS_SECONDS,
    DEFAULT_RATE,
    DEFAULT_SETTLE_TIMEOUT_SECONDS,
    DEFAULT_WINDOW_SECONDS,
    ChaosOptions,
)
from infra.local.chaos.plan import DEFAULT_SEED, DEFAULT_SIZE
from infra.local.chaos.reconcile import ChaosResult
from infra.local.chaos.scratch_database import PostgresUnavailableError, postgres_server
from infra.local.component_logs import component_output_to, terminal_console

RESULT_FILE = Path("bench") / "chaos.json"
LOG_FILE = Path("logs") / "chaos.log"


def print_result(result: ChaosResult, console: Console) -> None:
    table = Table(title="Chaos run")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for name in ("rows_in", "scored_unique", "rejected", "duplicate_rows", "missing"):
        table.add_row(name, f"{getattr(result, name):,}")
    table.add_row("windows evaluated / expected", f"{result.windows_evaluated} / {result.windows_expected}")
    for kind, count in result.faults_injected.items():
        table.add_row(f"fault: {kind}", f"{count:,}")
    console.print(table)
    for name, holds in result.invariants.items():
        console.print(f"{'[green]holds[/]' if holds else '[red]FAILS[/]'}  {name}")


def main(
    *,
    size: Annotated[int, typer.Option(help="input rows: file drops, simulated and poison records")] = DEFAULT_SIZE,
    seed: Annotated[int, typer.Option(help="seed of the workload and of the fault plan")] = DEFAULT_SEED,
    rate: Annotated[float, typer.Option(help="records per second of the simulator")] = DEFAULT_RATE,
    window_seconds: Annotated[int, typer.Option(help="monitoring window length")] = DEFAULT_WINDOW_SECONDS,
    lateness_seconds: Annotated[float, typer.Option(help="monitoring window lateness")] = DEFAULT_LATENESS_SECONDS,
    settle_timeout: Annotated[
        float, typer.Option(help="seconds to wait for the pipeline to settle after the workload")
    ] = DEFAULT_SETTLE_TIMEOUT_SECONDS,
    postgres: Annotated[
        str | None,
        typer.Option(help="Postgres server for the run's scratch database (default: DATABASE_URL's, else local)"),
    ] = None,
) -> None:
    console = terminal_console()
    settings = get_settings()
    options = ChaosOptions(
        size=size,
        seed=seed,
        rate=rate,
        window_seconds=window_seconds,
        lateness_seconds=lateness_seconds,
        settle_timeout_seconds=settle_timeout,
        postgres_server=postgres or postgres_server(settings.database_url),
    )
    with component_output_to(settings.local_state_dir / LOG_FILE) as log_path:
        from infra.local.chaos.run import run_chaos  # Prefect and Evidently, configured by now

        try:
            result = run_chaos(options, console=console)
        except PostgresUnavailableError as exc:
            console.print(f"[red]{redact(str(exc))}[/]")  # it names the server: DATABASE_URL or --postgres
            raise typer.Exit(code=2) from None
    print_result(result, console)
    target = get_settings().local_state_dir / RESULT_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(result.model_dump_json(indent=2))
    console.print(f"result written to {target} in {result.run['wall_seconds']} s; component logs in {log_path}")
    if not result.passed:
        raise typer.Exit(code=1)


if __name__ == "__main__":
    typer.run(main)
