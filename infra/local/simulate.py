"""Feed a running stack: file drops into the input prefix, or a live record stream at a target rate.

Both write to the running local stack with its own credentials, whatever AWS credentials the shell holds:
synthetic records must not land in a deployed stream by accident. ``--aws`` targets the credentials'
account only after a typed ``yes`` (``--aws --yes`` for scripts). The stream goes through the producer's
own :class:`KinesisWriter`, so it exercises the same aggregation and wire format.

A local tool, not part of the producer (whose Lambda image does not ship it); file drops go through
:mod:`infra.local.driver`, as the demo's and the chaos run's do.

Design notes: docs/producer.md#simulators (usage, default files)
"""

from __future__ import annotations

import itertools
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Protocol
from urllib.parse import urlsplit

import boto3
import botocore.session
import typer
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn

from churn_common.aws import CLIENT_CONFIG
from churn_common.redaction import redact
from churn_common.schema import CustomerRow
from churn_common.settings import Settings, get_settings
from churn_common.wire import encode, source_id_for
from infra.local.driver import upload
from infra.local.label_feed import (
    DEFAULT_LABEL_DELAY_SECONDS,
    DEFAULT_LABEL_FILE_SECONDS,
    DEFAULT_LABEL_SHARE,
    LabelFeed,
    LabelFeedOptions,
    LabelFeedSummary,
    LabelHoldback,
    S3LabelDrop,
)
from producer import KinesisWriter, ValidRow, WriteStats, customer_record, split_csv

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLES_GLOB = "sample_*.csv"
SAMPLES_DIR = REPO_ROOT / "data" / "samples"
DRIFTED_SAMPLE = SAMPLES_DIR / "sample_drifted.csv"
DATA_GLOB = "*.csv"
DRIFTED_SEED_OFFSET = 1_000_003  # drifted synthetic blocks never reuse a seed of the undrifted ones
DEFAULT_INTERVAL_SECONDS = 10.0
DEFAULT_RATE = 1_000.0
DEFAULT_DURATION_SECONDS = 30.0
FLUSH_INTERVAL_SECONDS = 0.2
GENERATED_BLOCK_ROWS = 5_000
SIM_URI_SCHEME = "sim://"
DEFAULT_SEED = 563  # the generator's own default; not imported, so file drops never load pandas
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
STACK_PROBE_TIMEOUT_SECONDS = 2.0
CONFIRMATION_WORD = "yes"
TARGET_ERROR_EXIT_CODE = 2
LABEL_OPTION_NAMES = {
    "share": "--label-share",
    "delay_seconds": "--label-delay",
    "file_seconds": "--label-file-seconds",
}

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__.splitlines()[0])
console = Console()


@dataclass(frozen=True, slots=True)
class StreamProgress:
    rows: int
    seconds: float
    drifted_rows: int

    @property
    def achieved_rate(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True, slots=True)
class StreamSummary:
    run_name: str
    source_id: str
    rows: int
    seconds: float
    writes: WriteStats
    drifted_rows: int = 0
    drift_at: float | None = None
    interrupted: bool = False

    @property
    def achieved_rate(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0


class SentRecords(Protocol):
    """What learns of each record sent (its true label, which the record may not carry) and of the time."""

    def offer(self, *, record_id: str, churned: int | None, sent_at: datetime) -> bool: ...

    def tick(self, *, now: datetime) -> None: ...


def _utc_now() -> datetime:
    return datetime.now(tz=UTC)


def default_drop_files(data_dir: Path | None = None) -> list[Path]:
    """The data files to drop: those of the operator's data folder except the training file, else the
    bundled samples (which never include the reference the model is trained on)."""
    if data_dir is None:
        return sorted(SAMPLES_DIR.glob(SAMPLES_GLOB))
    from data.dataset import TRAINING_FILE_NAME  # pandas only when a data folder is used

    return sorted(p for p in data_dir.glob(DATA_GLOB) if p.name != TRAINING_FILE_NAME)


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
        frame = generate(
            n_rows=block_rows, seed=seed + block, drift=drift, with_label=with_label, with_customer_id=True
        )
        for values in frame.to_dict("records"):
            yield CustomerRow.model_validate(values)


def _started(rows: Iterable[CustomerRow]) -> Iterator[CustomerRow]:
    """The rows with their first one already produced: a source's start-up (imports, first generated
    block) is not streaming time."""
    pending = iter(rows)
    first = next(pending, None)
    return pending if first is None else itertools.chain([first], pending)


def stream_rows(
    rows: Iterable[CustomerRow],
    *,
    writer: KinesisWriter,
    run_name: str,
    rate: float,
    duration: float,
    drifted: Iterable[CustomerRow] | None = None,
    drift_at: float | None = None,
    label_on_record: bool = False,
    sent: SentRecords | None = None,
    clock: Callable[[], float] = time.monotonic,
    wall_clock: Callable[[], datetime] = _utc_now,
    sleep: Callable[[float], None] = time.sleep,
    on_progress: Callable[[StreamProgress], None] | None = None,
) -> StreamSummary:
    """Put rows at ``rate`` per second until ``duration`` has passed, the rows run out or Ctrl-C; from
    ``drift_at`` seconds on, the rows come from ``drifted`` instead.

    Paced against the start time, not per record, so a slow call is caught up on instead of lowering
    the rate; buffered aggregates are flushed every ``FLUSH_INTERVAL_SECONDS`` to keep latency low.
    A record carries its row's label only with ``label_on_record``: a live stream's records are scored
    before anyone knows whether the customer churned. ``sent`` is told every record's true label and send
    time (the label feed), and the time after each flush. Ctrl-C ends the run like its duration does, so
    what was sent is flushed and summarised.
    """
    if rate <= 0 or duration <= 0:
        raise ValueError("rate and duration must be positive")
    if (drifted is None) != (drift_at is None):
        raise ValueError("drifted rows and the time to switch to them go together")
    source_id = source_id_for(f"{SIM_URI_SCHEME}{run_name}")
    sources = [_started(rows)] + ([_started(drifted)] if drifted is not None else [])
    switch_at = duration if drift_at is None else drift_at
    started = clock()
    last_flush = started
    count = drifted_rows = 0
    interrupted = False
    try:
        while True:
            due, elapsed = count / rate, clock() - started
            if due >= duration or elapsed >= duration:
                break
            is_drifted = due >= switch_at
            customer = next(sources[is_drifted], None)
            if customer is None:
                break
            if due > elapsed:
                sleep(due - elapsed)
            count += 1
            drifted_rows += is_drifted
            sent_at = wall_clock()
            record = customer_record(customer, source_id=source_id, row=count, event_time=sent_at)
            if not label_on_record and record.label is not None:
                record = record.model_copy(update={"label": None})
            writer.add(record.record_id, encode(record))
            if sent is not None:
                sent.offer(record_id=record.record_id, churned=customer.churn, sent_at=sent_at)
            if clock() - last_flush >= FLUSH_INTERVAL_SECONDS:
                writer.flush()
                last_flush = clock()
                if sent is not None:
                    sent.tick(now=wall_clock())
                if on_progress:
                    on_progress(StreamProgress(count, last_flush - started, drifted_rows))
    except KeyboardInterrupt:
        interrupted = True
    writes = writer.flush()
    elapsed = clock() - started
    if on_progress:
        on_progress(StreamProgress(count, elapsed, drifted_rows))
    return StreamSummary(
        run_name=run_name,
        source_id=source_id,
        rows=count,
        seconds=elapsed,
        writes=writes,
        drifted_rows=drifted_rows,
        drift_at=drift_at,
        interrupted=interrupted,
    )


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


def _progress(*columns: ProgressColumn) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        *columns,
        TimeElapsedColumn(),
        console=console,
    )


def _rows_source(csv: list[Path] | None, *, seed: int, drift: dict[str, float]) -> Iterator[CustomerRow]:
    """Generated rows always carry their true label (the features do not depend on it): whether a record
    shows it, or the label feed delivers it later, is the stream's choice."""
    return csv_rows(csv) if csv else generated_rows(seed=seed, drift=drift, with_label=True)


class TargetError(Exception):
    """The simulator writes nothing: no local stack answers, or writing to AWS was not confirmed."""


@dataclass(frozen=True, slots=True)
class Target:
    """Where a simulator writes, and the session its calls are signed with."""

    session: boto3.session.Session
    region: str
    endpoint_url: str | None  # None: AWS's own endpoints, or AWS_ENDPOINT_URL as botocore reads it

    def client(self, service: str) -> Any:
        return self.session.client(
            service, region_name=self.region, endpoint_url=self.endpoint_url, config=CLIENT_CONFIG
        )


@dataclass(frozen=True, slots=True)
class LocalEndpoint:
    url: str
    hint: str  # how to reach the running stack when nothing answers at ``url``


def local_endpoint(settings: Settings) -> LocalEndpoint:
    """The local stack's endpoint. ``AWS_ENDPOINT_URL`` counts when it is on this machine (the stack's own
    processes set it, tests point it at their emulator); one elsewhere may be a real service, which only
    ``--aws`` writes to."""
    configured = settings.aws_endpoint_url
    port = settings.local_aws_port
    if not configured:
        return LocalEndpoint(
            url=f"http://127.0.0.1:{port}",
            hint=f"LOCAL_AWS_PORT={port}: start the stack with `make stack` in another shell, or set LOCAL_AWS_PORT "
            "to the port of the one running",
        )
    if urlsplit(configured).hostname in LOOPBACK_HOSTS:
        return LocalEndpoint(
            url=configured,
            hint=f"from AWS_ENDPOINT_URL: start the stack with `make stack` in another shell and unset "
            f"AWS_ENDPOINT_URL (LOCAL_AWS_PORT names the stack's port, {port} now)",
        )
    raise TargetError(
        f"AWS_ENDPOINT_URL is {redact(configured)}, not this machine: the simulators write to the local stack "
        "(unset AWS_ENDPOINT_URL), or with --aws to that endpoint after you confirm"
    )


def require_local_stack(endpoint: LocalEndpoint) -> None:
    """Fail at once, saying how to start one, when nothing answers at ``endpoint``: the AWS client would
    retry for half a minute and then report a connection error that names no cause."""
    try:
        with urllib.request.urlopen(endpoint.url, timeout=STACK_PROBE_TIMEOUT_SECONDS):
            return
    except urllib.error.HTTPError:
        return  # an answer, if not a 200: someone serves the AWS APIs there
    except OSError:
        raise TargetError(
            f"no local stack answers at {redact(endpoint.url)} ({endpoint.hint}); --aws writes to real AWS instead"
        ) from None


def local_credentials(settings: Settings) -> tuple[str, str]:
    """The key a running stack that enforces IAM wrote for other shells (its operator's), else the fake
    credentials of every local process. The shell's own credentials, perhaps real ones, are never used."""
    from infra.local.principals import read_credentials_file  # the local stack's code, only for local targets
    from infra.local.stack import LOCAL_CREDENTIALS, credentials_path

    path = credentials_path(settings)
    if not path.is_file():
        return LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"], LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"]
    try:
        key = read_credentials_file(path)
    except LookupError as exc:
        raise TargetError(str(exc)) from None
    return key.access_key_id, key.secret_access_key


def local_target(settings: Settings) -> Target:
    endpoint = local_endpoint(settings)
    require_local_stack(endpoint)
    access_key, secret_key = local_credentials(settings)
    core = botocore.session.get_session()
    # AWS_PROFILE (perhaps a real account's, perhaps not even defined here) has no say in the local stack's calls.
    core.get_component("config_store").set_config_variable("profile", None)
    session = boto3.session.Session(
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        region_name=settings.aws_region,
        botocore_session=core,
    )
    return Target(session=session, region=settings.aws_region, endpoint_url=endpoint.url)


def confirm_writes(*, assume_yes: bool, interactive: bool, ask: Callable[[str], str]) -> None:
    """A typed ``yes`` on the terminal, or ``--yes``; without a terminal nobody can answer, so no question is
    taken as consent."""
    if assume_yes:
        return
    if not interactive:
        raise TargetError("stdin is not a terminal, so nobody can confirm: add --yes to write without the question")
    if ask(f"Type {CONFIRMATION_WORD} to write there: ").strip() != CONFIRMATION_WORD:
        raise TargetError("not confirmed: nothing was written")


def _stdin_is_terminal() -> bool:
    return sys.stdin.isatty()


def aws_target(settings: Settings, *, destination: str, assume_yes: bool) -> Target:
    """The account of the shell's credentials, shown (with region, endpoint and ``destination``) and
    confirmed before anything is written."""
    try:
        session = boto3.session.Session()
        identity = session.client("sts", region_name=settings.aws_region, config=CLIENT_CONFIG).get_caller_identity()
    except (BotoCoreError, ClientError) as exc:
        raise TargetError(f"cannot tell which AWS account the credentials belong to: {redact(str(exc))}") from None
    endpoint = f", endpoint {redact(settings.aws_endpoint_url)}" if settings.aws_endpoint_url else ""
    typer.echo(
        f"--aws: writing to {destination} in AWS account {identity['Account']} as {identity['Arn']}, "
        f"region {settings.aws_region}{endpoint}"
    )
    confirm_writes(assume_yes=assume_yes, interactive=_stdin_is_terminal(), ask=input)
    return Target(session=session, region=settings.aws_region, endpoint_url=None)


def target_or_exit(settings: Settings, *, aws: bool, assume_yes: bool, destination: str) -> Target:
    """The target of a command, or the command ends with the reason, before anything is written."""
    try:
        if assume_yes and not aws:
            raise TargetError("--yes only goes with --aws: the local stack needs no confirmation")
        if aws:
            return aws_target(settings, destination=destination, assume_yes=assume_yes)
        target = local_target(settings)
    except TargetError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(TARGET_ERROR_EXIT_CODE) from None
    typer.echo(f"writing to {destination} on the local stack at {redact(target.endpoint_url or '')}")
    return target


AwsOption = Annotated[
    bool,
    typer.Option(
        "--aws",
        help="write to the AWS account of your credentials instead of the local stack (shown, then confirmed)",
    ),
]
YesOption = Annotated[
    bool, typer.Option("--yes", help="with --aws: no question (for scripts, or stdin not a terminal)")
]


@app.command("file-drops")
def file_drops(
    files: Annotated[
        list[Path] | None,
        typer.Argument(help="CSV files (default: CHURN_DATA_DIR's files but the training file, else data/samples)"),
    ] = None,
    interval: Annotated[float, typer.Option(help="seconds between uploads")] = DEFAULT_INTERVAL_SECONDS,
    aws: AwsOption = False,
    yes: YesOption = False,
) -> None:
    """Upload CSV files one after another to the input prefix of the bucket."""
    settings = get_settings()
    paths = files or default_drop_files(settings.churn_data_dir)
    if not paths:
        where = settings.churn_data_dir or SAMPLES_DIR / SAMPLES_GLOB
        raise typer.BadParameter(f"no files given and no data files found in {where}")
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise typer.BadParameter(f"not a file: {', '.join(missing)}")
    destination = f"s3://{settings.bucket}/{settings.input_prefix}"
    s3 = target_or_exit(settings, aws=aws, assume_yes=yes, destination=destination).client("s3")
    with _progress() as progress:
        task = progress.add_task("uploading", total=len(paths))
        for index, path in enumerate(paths):
            if index:
                time.sleep(interval)
            dropped = upload(path, settings=settings, s3=s3)
            progress.console.print(f"dropped s3://{dropped.bucket}/{dropped.key}")
            progress.advance(task)


@app.command("stream")
def stream(
    *,
    csv: Annotated[list[Path] | None, typer.Option(help="read rows from these CSV files (cycled)")] = None,
    rate: Annotated[float, typer.Option(help="records per second")] = DEFAULT_RATE,
    duration: Annotated[float, typer.Option(help="seconds to run")] = DEFAULT_DURATION_SECONDS,
    run_name: Annotated[str | None, typer.Option(help="names the source: sim://<run name>")] = None,
    seed: Annotated[int, typer.Option(help="seed of the synthetic rows")] = DEFAULT_SEED,
    drift: Annotated[
        list[str] | None,
        typer.Option(help="COLUMN=STRENGTH for synthetic rows: from the start, or from --drift-at on"),
    ] = None,
    drift_at: Annotated[
        float | None, typer.Option(help="seconds into the run from which drifted rows are sent")
    ] = None,
    drift_csv: Annotated[
        list[Path] | None, typer.Option(help="with --csv and --drift-at: drifted rows from these files")
    ] = None,
    label: Annotated[
        bool, typer.Option(help="put the churn label on each record itself (not with --label-share)")
    ] = False,
    label_share: Annotated[
        float,
        typer.Option(help="share (0..1) of the records whose label is delivered later, in label files (0: none)"),
    ] = DEFAULT_LABEL_SHARE,
    label_delay: Annotated[
        float, typer.Option(help="seconds from a record's send until its label is delivered")
    ] = DEFAULT_LABEL_DELAY_SECONDS,
    label_file_seconds: Annotated[
        float, typer.Option(help="seconds between label files (each holds the labels due by then)")
    ] = DEFAULT_LABEL_FILE_SECONDS,
    aws: AwsOption = False,
    yes: YesOption = False,
) -> None:
    """Put customer records on the stream at a target rate for a duration, optionally drifting midway;
    records carry no label unless --label, and --label-share delivers a share of the labels later."""
    settings = get_settings()
    started = datetime.now(tz=UTC)
    name = run_name or f"stream-{started:%Y%m%dT%H%M%S}"
    drift_spec = _drift(drift or [])
    if drift_csv and drift_at is None:
        raise typer.BadParameter("--drift-csv needs --drift-at")
    if drift_at is not None and not 0 <= drift_at < duration:
        raise typer.BadParameter(f"--drift-at must be in [0, {duration}) seconds")
    options = _label_feed_options(share=label_share, delay=label_delay, file_seconds=label_file_seconds, seed=seed)
    if label and options.enabled:
        raise typer.BadParameter(
            "--label puts the label on each record, --label-share delivers labels later in label files: use one"
        )
    labels_at = f"s3://{settings.bucket}/{settings.labels_prefix}"
    destination = f"Kinesis stream {settings.stream_name}" + (f" and {labels_at}" if options.enabled else "")
    target = target_or_exit(settings, aws=aws, assume_yes=yes, destination=destination)
    if drift_at is None:
        rows, drifted = _rows_source(csv, seed=seed, drift=drift_spec), None
    else:
        rows = _rows_source(csv, seed=seed, drift={})
        drifted = (
            csv_rows(drift_csv or [DRIFTED_SAMPLE])
            if csv
            else generated_rows(seed=seed + DRIFTED_SEED_OFFSET, drift=drift_spec or strong_drift(), with_label=True)
        )
    feed = (
        LabelFeed(
            holdback=LabelHoldback(share=options.share, delay_seconds=options.delay_seconds, seed=options.seed),
            drop=S3LabelDrop(s3=target.client("s3"), bucket=settings.bucket),
            prefix=settings.labels_prefix,
            source_id=source_id_for(f"{SIM_URI_SCHEME}{name}"),
            started=started,
            file_seconds=options.file_seconds,
        )
        if options.enabled
        else None
    )
    writer = KinesisWriter(stream_name=settings.stream_name, kinesis=target.client("kinesis"))
    rate_column = TextColumn("[cyan]{task.fields[achieved]:>9,.0f} rec/s {task.fields[phase]}")
    with _progress(rate_column) as progress:
        task = progress.add_task(f"{name}", total=int(rate * duration), achieved=0.0, phase="")

        def show(now: StreamProgress) -> None:
            phase = f"({now.drifted_rows:,} drifted)" if drift_at is not None else ""
            progress.update(task, completed=now.rows, achieved=now.achieved_rate, phase=phase)

        summary = stream_rows(
            rows,
            writer=writer,
            run_name=name,
            rate=rate,
            duration=duration,
            drifted=drifted,
            drift_at=drift_at,
            label_on_record=label,
            sent=feed,
            on_progress=show,
        )
    if summary.interrupted:
        console.print(f"stopped by Ctrl-C after {summary.rows} rows")
    console.print(summary_text(summary, target_rate=rate))
    if feed is None:
        console.print(labels_text(None, on_record=label, rows=summary.rows, options=options, labels_at=labels_at))
        return
    drain_labels(feed, delay=options.delay_seconds)
    console.print(labels_text(feed.summary(), on_record=False, rows=summary.rows, options=options, labels_at=labels_at))


def _label_feed_options(*, share: float, delay: float, file_seconds: float, seed: int) -> LabelFeedOptions:
    try:
        return LabelFeedOptions(share=share, delay_seconds=delay, file_seconds=file_seconds, seed=seed)
    except ValidationError as exc:
        reasons = [f"{LABEL_OPTION_NAMES.get(str(e['loc'][0]), e['loc'][0])}: {e['msg']}" for e in exc.errors()]
        raise typer.BadParameter("; ".join(reasons)) from None


def drain_labels(
    feed: LabelFeed,
    *,
    delay: float,
    now: Callable[[], datetime] = _utc_now,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """The labels still held are delivered once due rather than dropped with the run; a Ctrl-C while waiting
    leaves them undelivered, and the summary counts them."""
    if not feed.pending:
        return
    console.print(
        f"waiting up to {delay:g} s to deliver the {feed.pending} labels still held back "
        "(Ctrl-C: stop, they are reported as not delivered)"
    )
    try:
        feed.drain(now=now, sleep=sleep)
    except KeyboardInterrupt:
        console.print("stopped waiting by Ctrl-C")


def labels_text(
    labels: LabelFeedSummary | None, *, on_record: bool, rows: int, options: LabelFeedOptions, labels_at: str
) -> str:
    if on_record:
        return "labels: on the records themselves (--label)"
    if labels is None:
        return "labels: none (records carry no label; --label-share P delivers a share P of them later as label files)"
    unlabelled = f"; {labels.unlabelled} rows had no label to hold back" if labels.unlabelled else ""
    error = f"; last write error: {labels.last_error}" if labels.not_delivered and labels.last_error else ""
    return (
        f"labels: {labels.held} of {rows} records held back (share {options.share:g}), {labels.delivered} delivered "
        f"in {labels.files} files under {labels_at} at least {options.delay_seconds:g} s after their record, "
        f"{labels.not_delivered} not delivered{unlabelled}{error}"
    )


def summary_text(summary: StreamSummary, *, target_rate: float) -> str:
    writes = summary.writes
    drift = (
        f"; {summary.drifted_rows} drifted rows from {summary.drift_at:g} s on" if summary.drift_at is not None else ""
    )
    return (
        f"{summary.rows} rows in {summary.seconds:.1f} s: {summary.achieved_rate:,.0f} rows/s "
        f"(target {target_rate:,.0f}){drift}; {writes.kinesis_records} Kinesis records in {writes.put_calls} "
        f"calls, {writes.bytes_per_user_record:.0f} bytes per row, {writes.retried_entries} entries retried; "
        f"source_id {summary.source_id}"
    )


def strong_drift() -> dict[str, float]:
    from data.synthetic import strong_drift as strong  # pandas only when synthetic rows are used

    return strong()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
