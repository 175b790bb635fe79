"""A chaos run: the whole pipeline on the embedded local stack, fed by file drops and the record simulator
at once, while the fault plan's faults happen; then every input row is reconciled.

The parts are the real ones (the emulator over HTTP, the local Lambda service with the producer and scorer
handlers, Postgres, the MLflow registry, the Prefect flow of the monitor); faults come in through their
hooks (see :mod:`infra.local.chaos.injectors`). Threads: the simulator, the file dropper, the monitor on
its schedule and a supervisor that restarts the Lambda service once it was killed; the main thread waits
until everything put in has gone through, then has the monitor run a last time and reconciles.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from sqlalchemy import Engine

from churn_common.aws import CLIENT_CONFIG, client
from churn_common.aws import session as aws_session
from churn_common.database import get_engine
from churn_common.settings import environment_overrides, get_settings
from infra.local.chaos.injectors import (
    CheckpointsThatDie,
    ConnectionKiller,
    DeadlineSqueezer,
    LambdaServiceKilled,
    PoisoningWriter,
    PutRecordsThrottle,
)
from infra.local.chaos.monitor import ScheduledMonitor
from infra.local.chaos.observe import dead_lettered, queue_depth, settled_by_scorer, stream_drained
from infra.local.chaos.options import ChaosOptions
from infra.local.chaos.plan import FaultKind, FaultPlan
from infra.local.chaos.reconcile import ChaosResult, InputCounts, reconcile, stored_counts
from infra.local.chaos.scratch_database import scratch_database
from infra.local.chaos.workers import DROP_TIMEOUT_SECONDS, POLL_SECONDS, FileDrops, Supervisor, Worker
from infra.local.chaos.workload import DropFiles, simulated_rows, simulator_run_name, write_drop_files
from infra.local.driver import upload, wait_for_manifest
from infra.local.lambda_service import Handler
from infra.local.resources import StackResources
from infra.local.simulate import StreamProgress, StreamSummary, stream_rows
from infra.local.stack import LocalStack

log = logging.getLogger(__name__)

STREAM_DURATION_SLACK = 10.0  # the simulator stops when its rows run out, never on its clock


@contextmanager
def _quiet_deaths() -> Iterator[None]:
    """Threads of the killed Lambda service end with :class:`LambdaServiceKilled`; that is the plan, not news."""
    previous = threading.excepthook

    def hook(args: threading.ExceptHookArgs) -> None:
        if args.exc_type is None or not issubclass(args.exc_type, LambdaServiceKilled):
            previous(args)

    threading.excepthook = hook
    try:
        yield
    finally:
        threading.excepthook = previous


class ChaosRun:
    """One run on a started stack: workers, the monitor's schedule, waiting, reconciliation."""

    def __init__(
        self,
        *,
        options: ChaosOptions,
        plan: FaultPlan,
        files: DropFiles,
        stack: LocalStack,
        engine: Engine,
        killer: ConnectionKiller,
        checkpoints: CheckpointsThatDie,
        squeezer: DeadlineSqueezer,
        console: Console,
    ) -> None:
        self.options, self.plan, self.files, self.stack, self.engine = options, plan, files, stack, engine
        self.killer, self.checkpoints, self.squeezer, self.console = killer, checkpoints, squeezer, console
        self.restart: dict[str, Any] = {}
        killer.on_kill = lambda invocation: self.say(
            f"fault: database connection of scorer invocation {invocation} killed mid-transaction"
        )
        self.stop = threading.Event()
        self._settled_task = TaskID(0)
        self.phases: dict[str, float] = {}
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        )

    @property
    def resources(self) -> StackResources:
        assert self.stack.resources is not None
        return self.stack.resources

    def say(self, message: str) -> None:
        self.progress.console.print(message)

    def run(self) -> ChaosResult:
        settings = get_settings()
        kinesis = client("kinesis")
        # From the shared session: the entries it puts are signed as whoever put them (the producer, the simulator).
        passthrough = aws_session().client("kinesis", region_name=settings.aws_region, config=CLIENT_CONFIG)
        throttle = PutRecordsThrottle(self.plan, passthrough=passthrough)
        throttle.install(kinesis)
        writer = PoisoningWriter(poison=self.plan.poison, stream_name=settings.stream_name, kinesis=kinesis)
        stream_seconds = self.plan.workload.simulated_records / self.options.rate
        drops = FileDrops(self.files, self.plan, stream_seconds, self.say, self.stop)
        supervisor = Supervisor(self.stack, self.checkpoints, self.say, self.stop)
        monitor = ScheduledMonitor(
            engine=self.engine,
            window_seconds=self.options.window_seconds,
            lateness_seconds=self.options.lateness_seconds,
            stop_at=time.time() + self.plan.monitor_stop_at * stream_seconds,
            stopped_windows=self.plan.monitor_stopped_windows,
            say=self.say,
        )
        try:
            with self.progress:
                workload = self.plan.workload
                self._settled_task = self.progress.add_task(
                    "scored or rejected by the scorer", total=workload.rows_in - workload.malformed_rows
                )
                workers = self._start(writer, drops, supervisor, monitor, stream_seconds)
                self._wait_for_workload(drops, workers["simulator"], workers["file-drops"])
                settled = self._settle(monitor, list(workers.values()))
                self._finish_monitor(monitor, workers["monitor"])
                dead_before_restart = dead_lettered(self.resources)
                settled = self._restart_and_drop(monitor) and settled
        finally:
            self.stop.set()
            throttle.uninstall(kinesis)
        summary: StreamSummary | None = workers["simulator"].result
        errors = [f"{w.name}: {w.error!r}" for w in workers.values() if w.error is not None]
        return self._reconcile(
            dead_before_restart=dead_before_restart,
            summary=summary,
            writer=writer,
            throttle=throttle,
            drops=drops,
            supervisor=supervisor,
            monitor=monitor,
            settled=settled,
            errors=errors,
        )

    def _start(
        self,
        writer: PoisoningWriter,
        drops: FileDrops,
        supervisor: Supervisor,
        monitor: ScheduledMonitor,
        stream_seconds: float,
    ) -> dict[str, Worker]:
        workload = self.plan.workload
        sent = self.progress.add_task("simulated records", total=workload.simulated_records)

        def show(now: StreamProgress) -> None:
            self.progress.update(sent, completed=now.rows)

        simulator = Worker(
            "simulator",
            lambda: stream_rows(
                simulated_rows(workload, seed=self.plan.seed),
                writer=writer,
                run_name=simulator_run_name(self.plan.seed),
                rate=self.options.rate,
                duration=stream_seconds * STREAM_DURATION_SLACK + 60,
                on_progress=show,
            ),
        )
        workers = [
            Worker("monitor", lambda: monitor.run_until(self.stop)),
            Worker("supervisor", supervisor),
            simulator,
            Worker("file-drops", drops),
        ]
        for worker in workers:
            worker.start()
        return {worker.name: worker for worker in workers}

    def _wait_for_workload(self, drops: FileDrops, simulator: Worker, dropper: Worker) -> None:
        """Until every simulated record was put and every file dropped (and dropped again) was processed."""
        dropped = self.progress.add_task("file drops (manifests)", total=len(self.files.scheduled) + 2)
        started = time.monotonic()
        while simulator.is_alive() or dropper.is_alive():
            self.progress.update(dropped, completed=len(drops.manifests) + (drops.repeat is not None))
            self.progress.update(self._settled_task, completed=settled_by_scorer(self.engine))
            time.sleep(POLL_SECONDS)
        self.progress.update(dropped, completed=len(drops.manifests) + (drops.repeat is not None))
        self.phases["streaming"] = round(time.monotonic() - started, 1)

    def _finish_monitor(self, monitor: ScheduledMonitor, schedule: Worker) -> None:
        """The schedule ends after the run in progress; then one last run closes every window."""
        started = time.monotonic()
        self.stop.set()
        schedule.join()
        monitor.final_run()
        self.phases["monitor_finishing"] = round(time.monotonic() - started, 1)

    def _restart_and_drop(self, monitor: ScheduledMonitor) -> bool:
        """The stack stopped and started again on the same database: a new emulator, whose stream starts its
        sequence numbers again. One more file then, scored in full, and the monitor's last run again."""
        started = time.monotonic()
        self.say("fault: stack restarted on the same database (a new emulator and stream)")
        self.stack.stop()
        self.stack.start()
        drop = self.files.after_restart
        manifest = wait_for_manifest(upload(drop.path), timeout=DROP_TIMEOUT_SECONDS)
        self.say(f"dropped {drop.name} ({drop.rows:,} rows) after the restart")
        settled = self._settle(monitor, [])
        monitor.final_run()
        self.restart = {"file": drop.name, "manifest": manifest, "seconds": round(time.monotonic() - started, 1)}
        self.phases["restart"] = self.restart["seconds"]
        return settled

    def _settle(self, monitor: ScheduledMonitor, workers: list[Worker]) -> bool:
        """Until the queue is empty, every shard is consumed to its end and the monitor's outage is over (or the
        timeout passes)."""
        task = self._settled_task
        started = time.monotonic()
        deadline = started + self.options.settle_timeout_seconds
        settled = False
        while time.monotonic() < deadline and not any(w.error for w in workers):
            self.progress.update(task, completed=settled_by_scorer(self.engine))
            queued, drained = queue_depth(self.resources.file_drops_queue_url), stream_drained(self.resources)
            log.info("settling: %d file drop messages queued, stream drained: %s", queued, drained)
            if queued == 0 and drained and monitor.outage_over:
                settled = True
                break
            time.sleep(POLL_SECONDS)
        self.progress.update(task, completed=settled_by_scorer(self.engine))
        self.phases["settling"] = round(time.monotonic() - started, 1)
        if not settled:
            self.say("[red]the pipeline did not settle: reconciling what is there[/]")
        return settled

    def _reconcile(
        self,
        *,
        dead_before_restart: dict[str, int],
        summary: StreamSummary | None,
        writer: PoisoningWriter,
        throttle: PutRecordsThrottle,
        drops: FileDrops,
        supervisor: Supervisor,
        monitor: ScheduledMonitor,
        settled: bool,
        errors: list[str],
    ) -> ChaosResult:
        manifests = [*drops.manifests.values(), *([self.restart["manifest"]] if self.restart else [])]
        inputs = InputCounts(
            file_rows=sum(f.rows for f in self.files.all),
            malformed_file_rows=sum(f.malformed for f in self.files.all),
            simulated_records=summary.rows if summary else 0,
            poison_records=sum(writer.poisoned.values()),
        )
        stored = stored_counts(
            self.engine,
            window_seconds=self.options.window_seconds,
            lateness_seconds=self.options.lateness_seconds,
            manifests=manifests,
        )
        faults = {
            FaultKind.PUT_RECORDS_ENTRY_FAILED: sum(throttle.failed.values()),
            FaultKind.DATABASE_CONNECTION_KILLED: self.killer.killed,
            FaultKind.POISON_RECORD: inputs.poison_records,
            FaultKind.LAMBDA_KILLED_BEFORE_CHECKPOINT: int(supervisor.downtime_seconds is not None),
            FaultKind.FILE_DROPPED_TWICE: int(drops.repeat is not None),
            FaultKind.MONITOR_STOPPED_WINDOWS: monitor.outage_windows,
            FaultKind.KEY_OVERWRITTEN: int(drops.overwrite is not None and drops.overwrite.records_sent > 0),
            FaultKind.FILE_OUTLIVED_INVOCATION: sum(m.segments - 1 for m in manifests),
            FaultKind.STACK_RESTARTED: int(bool(self.restart)),
        }
        lost = self.checkpoints.lost_checkpoint
        details = {
            "put_records_entries": throttle.entries,
            "put_records_errors": dict(throttle.failed),
            "scorer_invocations": self.killer.invocations,
            "poison_by_kind": {str(k): v for k, v in writer.poisoned.items()},
            "lambda_uncheckpointed_batch": {"shard": lost[0].rsplit("/", 1)[-1], "sequence_number": lost[1]}
            if lost
            else None,
            "lambda_downtime_seconds": supervisor.downtime_seconds,
            "redropped_file": self.files.scheduled[self.plan.redropped_file].name,
            "overwritten_key_of": self.files.scheduled[self.plan.overwritten_file].name,
            "overwrite_records_sent": drops.overwrite.records_sent if drops.overwrite else None,
            "long_file": self.squeezer.file_name,
            "producer_invocations_cut_short": self.squeezer.squeezed,
            "segments_per_file": {m.source_uri.rsplit("/", 1)[-1] + f"@{m.source_id}": m.segments for m in manifests},
            "after_restart_file": self.restart.get("file"),
            "after_restart_records_sent": self.restart["manifest"].records_sent if self.restart else None,
            "redrop_records_sent_again": drops.repeat.records_sent if drops.repeat else None,
            "monitor_runs": monitor.runs,
            "monitor_failed_runs": monitor.failed_runs,
            "monitor_stopped_at_stream_fraction": round(self.plan.monitor_stop_at, 3),
        }
        return reconcile(
            inputs,
            stored,
            evaluations=monitor.evaluations,
            caught_up=monitor.caught_up,
            faults_injected={str(k): v for k, v in faults.items()},
            fault_details=details,
            dead_lettered={k: v + dead_before_restart.get(k, 0) for k, v in dead_lettered(self.resources).items()},
            settled=settled,
            errors=errors,
            run={
                "seed": self.plan.seed,
                "size": self.options.size,
                "shards": len(client("kinesis").list_shards(StreamName=self.resources.stream_name)["Shards"]),
                "window_seconds": self.options.window_seconds,
                "lateness_seconds": self.options.lateness_seconds,
                "simulator_target_rate": self.options.rate,
                "simulator_achieved_rate": round(summary.achieved_rate) if summary else None,
                "database": "postgresql",
                "phase_seconds": self.phases,
            },
        )


def run_chaos(options: ChaosOptions, *, console: Console) -> ChaosResult:
    """Set up (a scratch database, the model, the files, the stack), run, reconcile, tear down."""
    plan = FaultPlan.build(seed=options.seed, size=options.size)
    started = time.monotonic()
    with (
        scratch_database(options.postgres_server) as database_url,
        environment_overrides({"DATABASE_URL": database_url}),
    ):
        from training import ensure_model

        ensure_model(console=console)
        settings = get_settings()
        files = write_drop_files(plan.workload, folder=settings.local_state_dir / "chaos", seed=plan.seed)
        engine = get_engine(database_url)
        killer = ConnectionKiller(plan, engine=engine)
        checkpoints = CheckpointsThatDie(die_at=plan.crash_at_checkpoint)
        squeezer = DeadlineSqueezer(files.scheduled[plan.long_file].name)
        wrappers = {"stream_scorer": killer.wrap, "producer": squeezer.wrap}

        def wrap(name: str, handler: Handler) -> Handler:
            return wrappers[name](handler)

        try:
            with (
                _quiet_deaths(),
                LocalStack(serve_monitor=False, wrap_handler=wrap, checkpoint_store=checkpoints) as stack,
            ):
                console.print(
                    f"chaos run: {plan.workload.rows_in:,} rows (seed {plan.seed}) on a stack of "
                    f"{len(client('kinesis').list_shards(StreamName=settings.stream_name)['Shards'])} shards"
                )
                chaos = ChaosRun(
                    options=options,
                    plan=plan,
                    files=files,
                    stack=stack,
                    engine=engine,
                    killer=killer,
                    checkpoints=checkpoints,
                    squeezer=squeezer,
                    console=console,
                )
                chaos.phases["setup"] = round(time.monotonic() - started, 1)
                result = chaos.run()
        finally:
            killer.close()
    result.run["wall_seconds"] = round(time.monotonic() - started, 1)
    result.run["finished_at"] = datetime.now(tz=UTC).isoformat(timespec="seconds")
    return result
