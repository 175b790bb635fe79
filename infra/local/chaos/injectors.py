"""Fault injectors: thin adapters that make the plan's faults happen through real hooks of real parts.

- :class:`PutRecordsThrottle`: a botocore hook on the Kinesis client answers PutRecords as Kinesis does when
  some entries are throttled or fail internally; the other entries are put for real.
- :class:`ConnectionKiller`: in planned scorer invocations, once the write transaction has begun, the
  database server terminates that connection (``pg_terminate_backend``), as a failover or a network cut would.
- :class:`CheckpointsThatDie`: the Lambda service dies right after a batch was committed, before its
  checkpoint is persisted; every thread of that service dies with it.
- :class:`PoisoningWriter`: the simulator's writer, putting planned poison records between its records.
"""

from __future__ import annotations

import hashlib
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from botocore.awsrequest import AWSResponse
from sqlalchemy import Connection, Engine, event, make_url

from infra.local.chaos.plan import FaultPlan, PoisonKind
from infra.local.chaos.poison import POISON_SOURCE_ID, poison_payload
from infra.local.lambda_service import CheckpointStore, Handler
from producer import KinesisWriter

PUT_RECORDS_EVENTS = ("before-parameter-build.kinesis.PutRecords", "before-call.kinesis.PutRecords")
# Below the writer's attempts per entry: throttling delays an entry, it never fails the file or the stream.
MAX_FAILURES_PER_ENTRY = 3
TERMINATE_BACKEND = "SELECT pg_terminate_backend(%s, %s)"
TERMINATE_WAIT_MS = 5_000


class PutRecordsThrottle:
    """Fails the PutRecords entries the plan names (by ordinal), at most a few times for the same entry."""

    def __init__(self, plan: FaultPlan, *, passthrough: Any) -> None:
        self._plan, self._passthrough = plan, passthrough
        self._lock = threading.Lock()
        self._failures: dict[bytes, int] = {}
        self.entries = 0
        self.failed: Counter[str] = Counter()

    def install(self, kinesis: Any) -> None:
        keep, respond = PUT_RECORDS_EVENTS
        kinesis.meta.events.register(keep, self._keep_params)
        kinesis.meta.events.register(respond, self._respond)

    def uninstall(self, kinesis: Any) -> None:
        keep, respond = PUT_RECORDS_EVENTS
        kinesis.meta.events.unregister(keep, self._keep_params)
        kinesis.meta.events.unregister(respond, self._respond)

    @staticmethod
    def _keep_params(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["chaos_put_records"] = params

    def _error_for(self, entry: dict[str, Any]) -> str | None:
        key = hashlib.sha1(entry["Data"] + entry["PartitionKey"].encode()).digest()
        with self._lock:
            self.entries += 1
            code = self._plan.put_entry_error(self.entries)
            if code is None or self._failures.get(key, 0) >= MAX_FAILURES_PER_ENTRY:
                self._failures.pop(key, None)
                return None
            self._failures[key] = self._failures.get(key, 0) + 1
            self.failed[code] += 1
            return code

    def _respond(self, context: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        params = context["chaos_put_records"]
        codes = [self._error_for(entry) for entry in params["Records"]]
        passing = [entry for entry, code in zip(params["Records"], codes, strict=True) if code is None]
        accepted = iter(
            self._passthrough.put_records(StreamName=params["StreamName"], Records=passing)["Records"]
            if passing
            else []
        )
        results = [next(accepted) if code is None else {"ErrorCode": code, "ErrorMessage": "chaos"} for code in codes]
        failed = len(codes) - len(passing)
        return AWSResponse("http://chaos", 200, {}, None), {"FailedRecordCount": failed, "Records": results}


def libpq_url(database_url: str) -> str:
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


class ConnectionKiller:
    """Wraps the scorer handler; in invocations the plan names, its transaction's connection is terminated by
    the server as soon as the transaction begins, so the batch write fails and Lambda retries it."""

    def __init__(self, plan: FaultPlan, *, engine: Engine) -> None:
        self._plan, self._engine = plan, engine
        self._admin_url = libpq_url(engine.url.render_as_string(hide_password=False))
        self._armed = threading.local()
        self._lock = threading.Lock()
        self.invocations = 0
        self.killed = 0
        self.on_kill: Callable[[int], None] = lambda _invocation: None
        event.listen(engine, "begin", self._on_begin)

    def close(self) -> None:
        event.remove(self._engine, "begin", self._on_begin)

    def wrap(self, handler: Handler) -> Handler:
        def invoke(event_: dict[str, Any], context: Any) -> dict[str, Any] | None:
            with self._lock:
                self.invocations += 1
                invocation = self.invocations
            self._armed.kill = self._plan.kills_connection(invocation)
            self._armed.invocation = invocation
            try:
                return handler(event_, context)
            finally:
                self._armed.kill = False

        return invoke

    def _on_begin(self, connection: Connection) -> None:
        if not getattr(self._armed, "kill", False):
            return
        self._armed.kill = False
        driver = connection.connection.driver_connection
        assert driver is not None
        with psycopg.connect(self._admin_url, autocommit=True) as admin:
            admin.execute(TERMINATE_BACKEND, (driver.info.backend_pid, TERMINATE_WAIT_MS))
        with self._lock:
            self.killed += 1
        self.on_kill(self._armed.invocation)


class LambdaServiceKilled(BaseException):
    """The Lambda service's process is gone: nothing any of its threads could catch and carry on from."""


class _DyingCheckpoints(CheckpointStore):
    def __init__(self, path: Path, *, die_at: int, died: threading.Event) -> None:
        super().__init__(path)
        self._die_at, self._died = die_at, died
        self._count = 0
        self._count_lock = threading.Lock()
        self.lost: tuple[str, str] | None = None

    def set(self, key: str, sequence_number: str) -> None:
        with self._count_lock:
            self._count += 1
            if self._count == self._die_at:
                self.lost = (key, sequence_number)
                self._died.set()
        if self._died.is_set():
            raise LambdaServiceKilled(f"died before checkpointing {key} at {sequence_number}")
        super().set(key, sequence_number)


class CheckpointsThatDie:
    """Opens the checkpoint store at each start of the Lambda service: the first service dies at its
    ``die_at``-th checkpoint (TRIM_HORIZON mappings checkpoint only after a committed batch); later ones live."""

    def __init__(self, *, die_at: int) -> None:
        self._die_at = die_at
        self.died = threading.Event()
        self._first: _DyingCheckpoints | None = None

    @property
    def lost_checkpoint(self) -> tuple[str, str] | None:
        """The shard and sequence number whose batch was committed but never checkpointed."""
        return self._first.lost if self._first is not None else None

    def __call__(self, path: Path) -> CheckpointStore:
        if self._first is not None:
            return CheckpointStore(path)
        self._first = _DyingCheckpoints(path, die_at=self._die_at, died=self.died)
        return self._first


class PoisoningWriter(KinesisWriter):
    """A Kinesis writer that puts the planned poison record just before the n-th record it is given."""

    def __init__(self, *, poison: Mapping[int, PoisonKind], **options: Any) -> None:
        super().__init__(**options)
        self._poison = poison
        self._records = 0
        self.poisoned: Counter[PoisonKind] = Counter()

    def add(self, partition_key: str, data: bytes) -> None:
        self._records += 1
        kind = self._poison.get(self._records)
        if kind is not None:
            super().add(f"{POISON_SOURCE_ID}-{self._records}", poison_payload(kind, self._records))
            self.poisoned[kind] += 1
        super().add(partition_key, data)


class _NearDeadline:
    """A Lambda context of an invocation that starts with its full timeout and is over at the first look
    after that: the producer streams one slice and hands on."""

    def __init__(self) -> None:
        self._looks = 0

    def get_remaining_time_in_millis(self) -> int:
        self._looks += 1
        return 300_000 if self._looks == 1 else 0


@dataclass
class DeadlineSqueezer:
    """Producer invocations about the planned long file run with their deadline near from the start, as an
    invocation does when its file is longer than its timeout: every one of them hands the rest on."""

    file_name: str
    squeezed: int = 0

    def wrap(self, handler: Handler) -> Handler:
        def near_deadline(event: dict[str, Any], context: Any) -> dict[str, Any] | None:
            if any(self.file_name in str(record.get("body", "")) for record in event.get("Records", [])):
                self.squeezed += 1
                context = _NearDeadline()
            return handler(event, context)

        return near_deadline
