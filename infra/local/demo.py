"""``make demo``: the whole pipeline on the embedded local stack, file by file, with a summary.

Each file is dropped just after a window boundary; all its rows carry the drop time as event time, so
each file becomes a monitoring window of its own. The monitor runs as the served Prefect deployment. The
labels of one file arrive later, as in production: it is dropped without them, judged on the estimate,
then its labels are dropped as a label file and the monitor judges its window again on them.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import Engine, func, select

from batch_monitor import read_runs
from churn_common.aws import client
from churn_common.database import alerts, get_engine, monitoring_windows, predictions, rejected_records
from churn_common.settings import environment_overrides, get_settings
from infra.local.component_logs import component_output_to, terminal_console
from infra.local.demo_summary import (
    AlertSummary,
    DemoSummary,
    FileSummary,
    LabelsLaterSummary,
    RetrainingSummary,
    WindowSummary,
)
from infra.local.driver import (
    Window,
    as_utc,
    sleep_to_next_window,
    upload,
    wait_for_manifest,
    wait_for_settled,
    window_of,
)
from infra.local.label_feed import S3LabelDrop, label_file_body
from infra.local.late_labels import file_labels, labels_of_stored, unlabelled_copy
from infra.local.prefect_runs import on_stack_server
from infra.local.stack import REPO_ROOT, LocalStack
from infra.local.ui_links import watch_lines

SAMPLES_DIR = REPO_ROOT / "data" / "samples"
LOG_FILE = Path("logs") / "demo.log"
DEFAULT_DEMO_FILES = ("sample_reference_like.csv", "sample_drifted.csv", "sample_degraded.csv")
# Dropped without its labels, which follow as a label file once its window was judged on the estimate.
DEFAULT_LABELS_LATER = ("sample_reference_like.csv",)
LABELS_KEY_STEM = "demo"
DEMO_ENVIRONMENT = {
    "MONITOR_WINDOW_SECONDS": "10",
    "MONITOR_LATENESS_SECONDS": "2",
    "MONITOR_SCHEDULE_SECONDS": "5",
    # Each file is one window, so the degraded sample alone triggers retraining (see README).
    "RETRAIN_ENABLED": "true",
    "RETRAIN_AFTER_WINDOWS": "1",
}
FILE_TIMEOUT_SECONDS = 180
MONITOR_TIMEOUT_SECONDS = 180
# <flow>/<deployment> as batch_monitor.serve serves it; imported from there, Prefect would be imported (and its
# settings read) before the stack sets PREFECT_API_URL, and its client would talk to a temporary server.
MONITOR_DEPLOYMENT = "batch-monitor/batch-monitor"
MONITOR_TRIGGER_AFTER_SECONDS = 60
RETRAINING_TIMEOUT_SECONDS = 180
ALERTS_TIMEOUT_SECONDS = 60
POLL_SECONDS = 0.5


@dataclass(frozen=True, slots=True)
class DroppedFile:
    name: str
    key: str
    manifest: dict[str, Any]
    window: Window | None = None  # the window of its records' event time (processed files)
    repeat: bool = False  # every record was stored before: an identical file was dropped earlier
    labels_later: Path | None = None  # the labelled original of a file dropped without its labels

    @property
    def source_id(self) -> str:
        return self.manifest["source_id"]


def _stored_rows(engine: Engine, window: Window, source_ids: Sequence[str] | None = None) -> int:
    """Records stored with event times in the window (of these sources), counted per model version as the
    monitor counts a window's rows."""
    query = select(func.count(predictions.c.record_id.distinct())).where(
        predictions.c.event_time >= window.start, predictions.c.event_time < window.end
    )
    if source_ids is not None:
        query = query.where(predictions.c.source_id.in_(source_ids))
    with engine.connect() as connection:
        return sum(connection.execute(query.group_by(predictions.c.model_version)).scalars())


def drop_and_wait(path: Path, *, engine: Engine, progress: Progress, labels_later: bool = False) -> DroppedFile:
    task = progress.add_task(f"{path.name}: producing" + (" (labels later)" if labels_later else ""), total=None)
    started = time.monotonic()
    if labels_later:
        uploaded = upload(unlabelled_copy(path, folder=get_settings().local_state_dir / "demo-unlabelled"))
    else:
        uploaded = upload(path)
    key = uploaded.key
    produced = wait_for_manifest(uploaded, timeout=FILE_TIMEOUT_SECONDS)
    manifest = produced.model_dump(mode="json")
    deadline = started + FILE_TIMEOUT_SECONDS
    if produced.status != "processed":
        progress.update(task, description=f"{path.name}: {produced.status} ({produced.error})", total=1, completed=1)
        return DroppedFile(path.name, key, manifest)
    expected = produced.records_sent
    progress.update(task, description=f"{path.name}: scoring", total=expected)
    try:
        wait_for_settled(
            engine,
            produced.source_id,
            expected=expected,
            deadline=deadline,
            on_progress=lambda settled: progress.update(task, completed=settled),
            poll=POLL_SECONDS,
        )
    except TimeoutError as exc:
        raise TimeoutError(f"{path.name}: {exc}") from None
    window = window_of(produced, seconds=get_settings().window_seconds)
    if expected and not _stored_rows(engine, window, [manifest["source_id"]]):
        # Same content, same record ids: the scorer stored none of them again, so this window gets no rows.
        progress.update(task, completed=expected, description=f"{path.name}: a repeat, records already stored")
        return DroppedFile(path.name, key, manifest, window, repeat=True)
    progress.update(task, completed=expected, description=f"{path.name}: scored")
    return DroppedFile(path.name, key, manifest, window, labels_later=path if labels_later else None)


def _evaluated_rows(engine: Engine, starts: set[datetime]) -> dict[datetime, int]:
    """Rows the stored evaluations of each window counted, summed over model versions."""
    query = (
        select(monitoring_windows.c.window_start, func.sum(monitoring_windows.c.n_rows))
        .where(monitoring_windows.c.window_start.in_(starts))
        .group_by(monitoring_windows.c.window_start)
    )
    with engine.connect() as connection:
        return {as_utc(start): int(rows) for start, rows in connection.execute(query)}


def wait_for_monitor(engine: Engine, windows: set[Window], *, progress: Progress) -> None:
    """Waits until the evaluations of each window counted all its stored rows, late ones included (a window
    that receives rows after its evaluation is evaluated again); if the scheduled deployment has not caught up
    in time, triggers one run of it."""
    stored = {window.start: _stored_rows(engine, window) for window in windows}

    def evaluated_windows() -> int:
        evaluated = _evaluated_rows(engine, set(stored))
        return sum(evaluated.get(start) == rows for start, rows in stored.items())

    task = progress.add_task("monitor: waiting for scheduled runs", total=len(stored))
    deadline = time.monotonic() + MONITOR_TIMEOUT_SECONDS
    trigger_at = time.monotonic() + MONITOR_TRIGGER_AFTER_SECONDS
    triggered = False
    while (done := evaluated_windows()) < len(stored):
        progress.update(task, completed=done)
        if not triggered and time.monotonic() > trigger_at:
            _trigger_monitor(progress, task)
            triggered = True
        if time.monotonic() > deadline:
            raise TimeoutError(f"monitor evaluated all rows of {done}/{len(stored)} windows")
        time.sleep(POLL_SECONDS)
    progress.update(task, completed=len(stored), description="monitor: windows evaluated")


def _window_figures(engine: Engine, start: datetime) -> list[WindowSummary]:
    with engine.connect() as connection:
        rows = connection.execute(select(monitoring_windows).where(monitoring_windows.c.window_start == start)).all()
    return [WindowSummary.from_row(row._mapping) for row in rows]


def drop_labels_later(dropped: DroppedFile, *, engine: Engine, progress: Progress) -> LabelsLaterSummary:
    """Drops the labels of a file dropped without them, then waits until the monitor judged its window again
    with them; the window's figures before and after are the summary."""
    assert dropped.labels_later is not None
    assert dropped.window is not None
    settings = get_settings()
    before = _window_figures(engine, dropped.window.start)
    labels = labels_of_stored(
        engine,
        source_id=dropped.source_id,
        truth=file_labels(dropped.labels_later),
        observed_at=datetime.now(tz=UTC),
    )
    key = f"{settings.labels_prefix}{LABELS_KEY_STEM}/{Path(dropped.name).stem}-labels.csv"
    S3LabelDrop(client("s3"), settings.bucket).put(key=key, body=label_file_body(labels))
    task = progress.add_task(f"{dropped.name}: {len(labels)} labels dropped, monitor joining them", total=1)
    deadline = time.monotonic() + MONITOR_TIMEOUT_SECONDS
    trigger_at = time.monotonic() + MONITOR_TRIGGER_AFTER_SECONDS
    unlabelled = {w.model_version: w.label_coverage for w in before}

    def joined(after: list[WindowSummary]) -> bool:
        """Every version of the window evaluated again with more labels than before."""
        return bool(after) and all((w.label_coverage or 0.0) > (unlabelled.get(w.model_version) or 0.0) for w in after)

    while not joined(after := _window_figures(engine, dropped.window.start)):
        if time.monotonic() > trigger_at:
            _trigger_monitor(progress, task)
            trigger_at = float("inf")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{dropped.name}: labels not joined to its window after {MONITOR_TIMEOUT_SECONDS} s")
        time.sleep(POLL_SECONDS)
    progress.update(task, completed=1, description=f"{dropped.name}: window judged again on its labels")
    return LabelsLaterSummary(file=dropped.name, labels_key=key, labels=len(labels), before=before, after=after)


def _trigger_monitor(progress: Progress, task: Any) -> None:
    from prefect.deployments import run_deployment

    progress.update(task, description="monitor: triggering a run")
    with on_stack_server(get_settings()):
        run_deployment(MONITOR_DEPLOYMENT, timeout=0)


def wait_for_retraining(engine: Engine, *, since: datetime, progress: Progress) -> None:
    """Waits until the monitor has no retraining left to do for what it has evaluated: the flow's own
    decision finds nothing due and no retraining started since ``since`` is still running.

    The demo asks the flow's question rather than predicting the answer from its own windows: on a database
    with history, an earlier promotion or windows an earlier retraining used change what the flow decides.
    """
    from batch_monitor import RunStatus, due_retraining, read_runs

    settings = get_settings()
    task = None
    deadline = time.monotonic() + RETRAINING_TIMEOUT_SECONDS
    while True:
        due = due_retraining(settings.resolved_database_url).retrain
        running = [
            run
            for run in read_runs(engine, model_name=settings.model_name)
            if run.status == RunStatus.RUNNING and run.started_at >= since
        ]
        if not due and not running:
            break
        if task is None:
            task = progress.add_task("retraining: challenger on the degraded windows", total=1)
        if time.monotonic() > deadline:
            state = "still running" if running else "due but not started"
            raise TimeoutError(f"retraining {state} after {RETRAINING_TIMEOUT_SECONDS} s")
        time.sleep(POLL_SECONDS)
    if task is not None:
        progress.update(task, completed=1, description="retraining: outcome recorded")


def e_mailed_alert_ids(engine: Engine, starts: set[datetime]) -> set[str] | None:
    """SNS message ids of the alerts e-mailed for these windows; ``None`` while one is recorded but not yet
    published (the monitor records an alert before it publishes it)."""
    from batch_monitor import E_MAILED

    with engine.connect() as connection:
        rows = connection.execute(
            select(alerts.c.window_start, alerts.c.message_id).where(alerts.c.status.in_([str(s) for s in E_MAILED]))
        ).all()
    ours = [message_id for start, message_id in rows if as_utc(start) in starts]
    return None if any(message_id is None for message_id in ours) else set(ours)


def deliver_outbox(
    outbox_url: str, outbox_dir: Path, console: Console, *, expected: Callable[[], set[str] | None] = set
) -> int:
    """Alerts arrive through SNS -> SQS: print each one and keep it in the outbox folder. Waits (within
    ``ALERTS_TIMEOUT_SECONDS``) until every alert ``expected`` names has arrived: the monitor may still be
    publishing when the windows' figures are already stored."""
    sqs = client("sqs")
    outbox_dir.mkdir(parents=True, exist_ok=True)
    delivered: set[str] = set()
    deadline = time.monotonic() + ALERTS_TIMEOUT_SECONDS
    while True:
        messages = sqs.receive_message(QueueUrl=outbox_url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages")
        for message in messages or []:
            envelope = json.loads(message["Body"])
            (outbox_dir / f"{envelope['MessageId']}.json").write_text(json.dumps(envelope, indent=2))
            console.print(f"[bold red]ALERT[/] {envelope.get('Subject', '')}")
            sqs.delete_message(QueueUrl=outbox_url, ReceiptHandle=message["ReceiptHandle"])
            delivered.add(envelope["MessageId"])
        if messages:
            continue
        waiting_for = expected()
        if (waiting_for is not None and waiting_for <= delivered) or time.monotonic() > deadline:
            return len(delivered)


def build_summary(
    engine: Engine,
    dropped: Sequence[DroppedFile],
    starts: set[datetime],
    labels_later: Sequence[LabelsLaterSummary] = (),
) -> DemoSummary:
    source_ids = [d.source_id for d in dropped]
    with engine.connect() as connection:
        total, distinct = connection.execute(
            select(func.count(), func.count(func.distinct(predictions.c.record_id))).where(
                predictions.c.source_id.in_(source_ids)
            )
        ).one()
        scorer_rejected = connection.execute(
            select(func.count()).select_from(rejected_records).where(rejected_records.c.source_id.in_(source_ids))
        ).scalar_one()
        window_rows = connection.execute(select(monitoring_windows).order_by(monitoring_windows.c.window_start)).all()
        alert_rows = connection.execute(select(alerts).order_by(alerts.c.window_start, alerts.c.kind)).all()

    windows = [WindowSummary.from_row(w._mapping) for w in window_rows if as_utc(w.window_start) in starts]
    alert_list = [
        AlertSummary(kind=a.kind, window_start=as_utc(a.window_start), subject=a.subject)
        for a in alert_rows
        if as_utc(a.window_start) in starts
    ]
    retraining = [
        RetrainingSummary(
            serving_version=r.serving_version,
            last_window_end=r.last_window_end,
            status=r.status,
            challenger_version=r.challenger_version,
            challenger_f1=r.challenger_f1,
            serving_f1=r.serving_f1,
            reason=r.reason,
        )
        for r in read_runs(engine)
        if r.first_window_start in starts
    ]
    files = [
        FileSummary(
            name=d.name,
            rows=int(d.manifest["rows_read"]),
            sent=int(d.manifest["records_sent"]),
            rejected=int(d.manifest["rows_rejected"]),
            status=d.manifest["status"],
            repeat=d.repeat,
        )
        for d in dropped
    ]
    # The same content dropped twice in one run is one set of records: its rows count once.
    first_of_source = {d.source_id: f for d, f in reversed(list(zip(dropped, files, strict=True)))}.values()
    return DemoSummary(
        rows_in=sum(f.rows for f in first_of_source),
        records_scored=int(distinct),
        rejected=sum(f.rejected for f in first_of_source) + int(scorer_rejected),
        duplicates=int(total) - int(distinct),
        files=files,
        windows=windows,
        alerts=alert_list,
        retraining=retraining,
        labels_later=list(labels_later),
    )


def print_summary(summary: DemoSummary, console: Console) -> None:
    files = Table(title="Files", show_lines=False)
    for column in ("file", "status", "rows", "sent", "rejected"):
        files.add_column(column)
    for f in summary.files:
        files.add_row(f.name, f.status, str(f.rows), str(f.sent), str(f.rejected))
    windows = Table(title="Monitoring windows")
    for column in ("start", "rows", "drift share", "drift", "f1", "precision", "recall", "accuracy"):
        windows.add_column(column)

    def fmt(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}"

    for w in summary.windows:
        windows.add_row(
            w.start.strftime("%H:%M:%S"),
            str(w.rows),
            fmt(w.drift_share),
            {True: "yes", False: "no", None: "-"}[w.dataset_drift],
            fmt(w.f1),
            fmt(w.precision),
            fmt(w.recall),
            fmt(w.accuracy),
        )
    console.print(files)
    for f in summary.files:
        if f.repeat:
            console.print(
                f"{f.name} is a repeat: an identical file was dropped before, so its {f.sent} records (same record "
                "ids) were already stored and none was scored again; it adds no monitoring window"
            )
    if summary.windows:
        console.print(windows)
    for late in summary.labels_later:
        before_by_version = {b.model_version: b for b in late.before}
        for after in late.after:
            before = before_by_version.get(after.model_version)
            was_covered, had_f1 = (0.0, None) if before is None else (before.label_coverage or 0.0, before.f1)
            coverage = f"{was_covered:.0%} -> {after.label_coverage or 0.0:.0%}"
            console.print(
                f"labels later for {late.file} ({late.labels} labels), window {after.start:%H:%M:%S}"
                f" v{after.model_version}: coverage {coverage}, F1 {fmt(had_f1)} -> {fmt(after.f1)}"
                f" (estimated {fmt(after.estimated_f1)}, error {fmt(after.estimate_error)})"
            )
    for a in summary.alerts:
        console.print(f"alert [bold]{a.kind}[/] for window {a.window_start:%H:%M:%S}: {a.subject}")
    for r in summary.retraining:
        challenger = f"challenger v{r.challenger_version}" if r.challenger_version else "no challenger"
        console.print(
            f"retraining of v{r.serving_version} (windows up to {r.last_window_end:%H:%M:%S}): "
            f"[bold]{r.status}[/], {challenger}; {r.reason}"
        )
    verdict = "[green]holds[/]" if summary.invariant_holds else "[red]VIOLATED[/]"
    console.print(
        f"rows_in={summary.rows_in} records_scored={summary.records_scored} rejected={summary.rejected} "
        f"duplicates={summary.duplicates}; rows_in == records_scored + rejected {verdict}"
    )


def serving_model_data_source() -> str | None:
    from mlflow import MlflowClient

    from churn_common.registry import DATA_SOURCE_TAG, configure_mlflow

    settings = get_settings()
    configure_mlflow(settings)
    version = MlflowClient().get_model_version_by_alias(settings.model_name, settings.model_alias)
    return version.tags.get(DATA_SOURCE_TAG)


def default_files(console: Console) -> list[Path]:
    """The bundled samples, or, when the serving model was trained on other data than the bundled
    synthetic reference, samples drawn from that data, so that reference-like really is."""
    from data.bundled import write_bundled_samples
    from data.dataset import DataSource, locate_training_data, read_churn_csv

    settings = get_settings()
    if serving_model_data_source() == DataSource.SYNTHETIC:
        return [SAMPLES_DIR / name for name in DEFAULT_DEMO_FILES]
    path, source = locate_training_data(settings)
    folder = settings.local_state_dir / "demo-samples"
    console.print(f"model trains on {source} data: demo samples are drawn from {path.name} into {folder}")
    write_bundled_samples(folder, base=read_churn_csv(path))
    return [folder / name for name in DEFAULT_DEMO_FILES]


def resolve_files(names: str | None, console: Console) -> list[Path]:
    if not names:
        prepare_environment()
        from training import ensure_model

        ensure_model(console=console)
        return default_files(console)
    paths = [Path(n).expanduser() for n in names.split()]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise typer.BadParameter(f"no such file: {', '.join(missing)}")
    return paths


def labels_later_names(option: str | None, *, default_files: bool) -> tuple[str, ...]:
    """The files whose labels arrive later: as given (``-``: none), else the default with the default files."""
    if option is None:
        return DEFAULT_LABELS_LATER if default_files else ()
    return tuple(name for name in option.split() if name != "-")


def prepare_environment() -> None:
    for key, value in DEMO_ENVIRONMENT.items():
        os.environ.setdefault(key, value)
    get_settings.cache_clear()


def demo_environment() -> AbstractContextManager[None]:
    """The demo's settings for the duration of a run, then the environment as it was (for callers in tests)."""
    return environment_overrides(DEMO_ENVIRONMENT, keep_existing=True)


def run_demo(
    files: Sequence[Path], *, console: Console, with_prefect: bool = True, labels_later: Sequence[str] = ()
) -> DemoSummary:
    """``labels_later``: names of files dropped without their labels, which follow as a label file."""
    from training import ensure_model

    unknown = sorted(set(labels_later) - {path.name for path in files})
    if unknown:
        raise ValueError(f"labels later for files not dropped: {', '.join(unknown)}")
    with demo_environment():
        ensure_model(console=console)
        return _run_on_stack(files, console=console, with_prefect=with_prefect, labels_later=labels_later)


def _run_on_stack(
    files: Sequence[Path], *, console: Console, with_prefect: bool, labels_later: Sequence[str]
) -> DemoSummary:
    started_at = datetime.now(tz=UTC)
    with LocalStack(with_prefect=with_prefect) as stack:
        settings = get_settings()
        engine = get_engine(settings.resolved_database_url)
        dropped = []
        with Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
        ) as progress:
            for path in files:
                sleep_to_next_window(settings.window_seconds)
                later = path.name in labels_later
                dropped.append(drop_and_wait(path, engine=engine, progress=progress, labels_later=later))
            # A repeat's window holds none of its records: the monitor has nothing to evaluate there.
            windows = {d.window for d in dropped if d.window is not None and not d.repeat}
            starts = {window.start for window in windows}
            joined = []
            if windows:
                wait_for_monitor(engine, windows, progress=progress)
                joined = [
                    drop_labels_later(d, engine=engine, progress=progress)
                    for d in dropped
                    if d.labels_later is not None and not d.repeat
                ]
                wait_for_retraining(engine, since=started_at, progress=progress)
        assert stack.resources is not None
        deliver_outbox(
            stack.resources.alerts_outbox_url,
            settings.local_state_dir / "outbox",
            console,
            expected=lambda: e_mailed_alert_ids(engine, starts),
        )
        return build_summary(engine, dropped, starts, joined)


def main(
    files: str | None = typer.Option(None, envvar="DEMO_FILES", help="Space-separated CSV files to drop."),
    labels_later: str | None = typer.Option(
        None,
        envvar="DEMO_LABELS_LATER",
        help="Space-separated names of dropped files whose labels arrive later as a label file"
        f" (default with the default files: {' '.join(DEFAULT_LABELS_LATER)}; '-' for none).",
    ),
) -> None:
    console = terminal_console()
    paths = resolve_files(files, console)
    later = labels_later_names(labels_later, default_files=not files)
    started = time.monotonic()
    with component_output_to(get_settings().local_state_dir / LOG_FILE) as log_path:
        summary = run_demo(paths, console=console, labels_later=later)
    print_summary(summary, console)
    target = get_settings().local_state_dir / "demo-summary.json"
    target.write_text(summary.model_dump_json(indent=2))
    console.print(f"summary written to {target} ({time.monotonic() - started:.1f} s); component logs in {log_path}")
    for line in watch_lines(get_settings()):
        console.print(line)
    if not summary.invariant_holds:
        raise typer.Exit(code=1)


if __name__ == "__main__":
    typer.run(main)
