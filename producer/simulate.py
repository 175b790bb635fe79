"""Feed a running stack: file drops into the input prefix, or a live record stream at a target rate.

Usage::

    python -m producer.simulate file-drops [FILES...] --interval 10
    python -m producer.simulate stream --rate 2000 --duration 30                 # synthetic rows
    python -m producer.simulate stream --csv data/samples/sample_drifted.csv    # rows of files, cycled

The stream goes through the producer's own :class:`KinesisWriter` (same aggregation, same wire format);
its records carry ``source_id_for("sim://<run name>")`` and the time they were sent as event time.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from churn_common.aws import client
from churn_common.schema import CustomerRow
from churn_common.settings import get_settings
from churn_common.wire import encode, source_id_for
from producer.kinesis_writer import KinesisWriter, WriteStats
from producer.records import customer_record
from producer.splitter import ValidRow, split_csv

REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLES_GLOB = "sample_*.csv"
SAMPLES_DIR = REPO_ROOT / "data" / "samples"
DEFAULT_INTERVAL_SECONDS = 10.0
DEFAULT_RATE = 1_000.0
DEFAULT_DURATION_SECONDS = 30.0
FLUSH_INTERVAL_SECONDS = 0.2
GENERATED_BLOCK_ROWS = 5_000
SIM_URI_SCHEME = "sim://"
DEFAULT_SEED = 563  # the generator's own default; not imported, so file drops never load pandas

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__.splitlines()[0])
console = Console()


@dataclass(frozen=True, slots=True)
class StreamSummary:
    run_name: str
    source_id: str
    rows: int
    seconds: float
    writes: WriteStats

    @property
    def achieved_rate(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0


def default_sample_files() -> list[Path]:
    return sorted(SAMPLES_DIR.glob(SAMPLES_GLOB))


def csv_rows(paths: Sequence[Path], *, cycle: bool = True) -> Iterator[CustomerRow]:
    """Valid rows of the files in turn (bad rows are the file-drop path's business and are skipped here)."""
    passes = itertools.count() if cycle else range(1)
    for _ in passes:
        for path in paths:
            with path.open("rb") as stream:
                yield from (item.customer for item in split_csv(stream) if isinstance(item, ValidRow))


def generated_rows(
    *, seed: int, drift: dict[str, float] | None = None, with_label: bool = True, block_rows: int = GENERATED_BLOCK_ROWS
) -> Iterator[CustomerRow]:
    """An endless synthetic stream, generated block by block (each block its own seed, so it never repeats)."""
    from data.synthetic import generate  # pandas and numpy only when this source is used

    return _generated_blocks(generate, seed=seed, drift=drift, with_label=with_label, block_rows=block_rows)


def _generated_blocks(
    generate: Callable[..., Any], *, seed: int, drift: dict[str, float] | None, with_label: bool, block_rows: int
) -> Iterator[CustomerRow]:
    for block in itertools.count():
        frame = generate(n_rows=block_rows, seed=seed + block, drift=drift, with_label=with_label)
        for values in frame.to_dict("records"):
            yield CustomerRow.model_validate(values)


def stream_rows(
    rows: Iterable[CustomerRow],
    *,
    writer: KinesisWriter,
    run_name: str,
    rate: float,
    duration: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    on_progress: Callable[[int, float], None] | None = None,
) -> StreamSummary:
    """Put rows at ``rate`` per second until ``duration`` has passed or the rows run out.

    Paced against the start time, not per record, so a slow call is caught up on instead of lowering
    the rate; buffered aggregates are flushed every ``FLUSH_INTERVAL_SECONDS`` to keep latency low.
    """
    if rate <= 0 or duration <= 0:
        raise ValueError("rate and duration must be positive")
    source_id = source_id_for(f"{SIM_URI_SCHEME}{run_name}")
    pending = iter(rows)
    first = next(pending, None)  # a source's start-up (imports, first block) is not streaming time
    rows = pending if first is None else itertools.chain([first], pending)
    started = clock()
    last_flush = started
    sent = 0
    for customer in rows:
        due, elapsed = sent / rate, clock() - started
        if due >= duration or elapsed >= duration:
            break
        if due > elapsed:
            sleep(due - elapsed)
        sent += 1
        record = customer_record(customer, source_id=source_id, row=sent, event_time=datetime.now(tz=UTC))
        writer.add(record.record_id, encode(record))
        if clock() - last_flush >= FLUSH_INTERVAL_SECONDS:
            writer.flush()
            last_flush = clock()
            if on_progress:
                on_progress(sent, last_flush - started)
    writes = writer.flush()
    elapsed = clock() - started
    if on_progress:
        on_progress(sent, elapsed)
    return StreamSummary(run_name=run_name, source_id=source_id, rows=sent, seconds=elapsed, writes=writes)


def _drift(items: list[str]) -> dict[str, float]:
    drift: dict[str, float] = {}
    for item in items:
        column, sep, strength = item.partition("=")
        try:
            if not sep:
                raise ValueError(item)
            drift[column.strip()] = float(strength)
        except ValueError:
            raise typer.BadParameter(f"expected COLUMN=STRENGTH, got {item!r}") from None
    return drift


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    )


@app.command("file-drops")
def file_drops(
    files: Annotated[list[Path] | None, typer.Argument(help="CSV files (default: data/samples/sample_*.csv)")] = None,
    interval: Annotated[float, typer.Option(help="seconds between uploads")] = DEFAULT_INTERVAL_SECONDS,
) -> None:
    """Upload CSV files one after another to the input prefix of the bucket."""
    settings = get_settings()
    paths = files or default_sample_files()
    if not paths:
        raise typer.BadParameter(f"no files given and none match {SAMPLES_DIR / SAMPLES_GLOB}")
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise typer.BadParameter(f"not a file: {', '.join(missing)}")
    s3 = client("s3")
    with _progress() as progress:
        task = progress.add_task("uploading", total=len(paths))
        for index, path in enumerate(paths):
            if index:
                time.sleep(interval)
            key = f"{settings.input_prefix}{path.name}"
            s3.upload_file(str(path), settings.bucket, key)
            progress.console.print(f"dropped s3://{settings.bucket}/{key}")
            progress.advance(task)


@app.command("stream")
def stream(
    *,
    csv: Annotated[list[Path] | None, typer.Option(help="read rows from these CSV files (cycled)")] = None,
    rate: Annotated[float, typer.Option(help="records per second")] = DEFAULT_RATE,
    duration: Annotated[float, typer.Option(help="seconds to run")] = DEFAULT_DURATION_SECONDS,
    run_name: Annotated[str | None, typer.Option(help="names the source: sim://<run name>")] = None,
    seed: Annotated[int, typer.Option(help="seed of the synthetic rows")] = DEFAULT_SEED,
    drift: Annotated[list[str] | None, typer.Option(help="COLUMN=STRENGTH, synthetic rows only")] = None,
    label: Annotated[bool, typer.Option(help="carry the churn label (synthetic rows)")] = True,
) -> None:
    """Put customer records on the stream at a target rate for a duration."""
    settings = get_settings()
    name = run_name or f"stream-{datetime.now(tz=UTC):%Y%m%dT%H%M%S}"
    rows = csv_rows(csv) if csv else generated_rows(seed=seed, drift=_drift(drift or []), with_label=label)
    writer = KinesisWriter(stream_name=settings.stream_name, kinesis=client("kinesis"))
    with _progress() as progress:
        task = progress.add_task(f"{name}: streaming", total=int(rate * duration))
        summary = stream_rows(
            rows,
            writer=writer,
            run_name=name,
            rate=rate,
            duration=duration,
            on_progress=lambda sent, _elapsed: progress.update(task, completed=sent),
        )
    console.print(
        f"{summary.rows} rows in {summary.seconds:.1f} s: {summary.achieved_rate:,.0f} rows/s "
        f"(target {rate:,.0f}); {summary.writes.kinesis_records} Kinesis records in {summary.writes.put_calls} "
        f"calls, {summary.writes.bytes_per_user_record:.0f} bytes per row; source_id {summary.source_id}"
    )


def main() -> None:
    app()


if __name__ == "__main__":
    main()
