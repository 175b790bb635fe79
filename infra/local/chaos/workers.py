"""The threads of a chaos run besides the main one: the file dropper and the Lambda service's supervisor,
each a callable run by a :class:`Worker` that keeps its result or error."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from infra.local.chaos.injectors import CheckpointsThatDie
from infra.local.chaos.plan import FaultPlan
from infra.local.chaos.workload import DropFiles
from infra.local.driver import UploadedVersion, upload, wait_for_manifest
from infra.local.stack import LocalStack
from producer import Manifest

POLL_SECONDS = 0.5
DROP_TIMEOUT_SECONDS = 300.0


class Worker(threading.Thread):
    """A thread that keeps what its target returned or raised, for the main thread to look at."""

    def __init__(self, name: str, target: Callable[[], Any]) -> None:
        super().__init__(name=name, daemon=True)
        self._target_function = target
        self.result: Any = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.result = self._target_function()
        except BaseException as exc:
            self.error = exc


@dataclass
class FileDrops:
    """Drops each scheduled file at its planned moment, the overwrite right after the file whose key it
    takes, then the planned file once more (identical bytes) once the first were processed."""

    files: DropFiles
    plan: FaultPlan
    stream_seconds: float
    say: Callable[[str], None]
    stop: threading.Event
    manifests: dict[str, Manifest] = field(default_factory=dict)
    repeat: Manifest | None = None
    overwrite: Manifest | None = None

    def __call__(self) -> None:
        started = time.monotonic()
        uploads: dict[str, UploadedVersion] = {}
        for index, (drop, at) in enumerate(zip(self.files.scheduled, self.plan.drop_at, strict=True)):
            self._sleep_until(started + at * self.stream_seconds)
            uploads[drop.name] = upload(drop.path)
            self.say(f"dropped {drop.name} ({drop.rows:,} rows)")
            if index == self.plan.overwritten_file:
                over = self.files.overwrite
                uploads[over.name] = upload(over.path, name=drop.name)
                self.say(f"fault: {over.name} ({over.rows:,} rows) uploaded to the key of {drop.name} right after it")
        for name, version in uploads.items():
            self.manifests[name] = self._wait_for(version, lambda m: m.status == "processed")
        self.overwrite = self.manifests[self.files.overwrite.name]
        again = self.files.scheduled[self.plan.redropped_file]
        self.say(f"fault: dropped {again.name} a second time")
        self.repeat = self._wait_for(upload(again.path), lambda m: m.repeat)
        self.manifests[again.name] = self.repeat

    def _wait_for(self, version: UploadedVersion, condition: Callable[[Manifest], bool]) -> Manifest:
        manifest = wait_for_manifest(version, timeout=DROP_TIMEOUT_SECONDS, stop=self.stop, poll=POLL_SECONDS)
        if not condition(manifest):
            raise AssertionError(f"unexpected manifest for {version.key}: {manifest.model_dump_json()}")
        return manifest

    def _sleep_until(self, moment: float) -> None:
        if self.stop.wait(max(0.0, moment - time.monotonic())):
            raise InterruptedError("stopped")


@dataclass
class Supervisor:
    """Restarts the Lambda service once it was killed, as a process supervisor would."""

    stack: LocalStack
    checkpoints: CheckpointsThatDie
    say: Callable[[str], None]
    stop: threading.Event
    downtime_seconds: float | None = None

    def __call__(self) -> None:
        while not self.checkpoints.died.wait(POLL_SECONDS):
            if self.stop.is_set():
                return
        died = time.monotonic()
        shard, sequence = self.checkpoints.lost_checkpoint or ("?", "?")
        self.say(f"fault: Lambda service killed after committing {shard.rsplit('/', 1)[-1]} up to {sequence}")
        self.stack.restart_lambda_service()
        self.downtime_seconds = round(time.monotonic() - died, 2)
        self.say(f"Lambda service restarted after {self.downtime_seconds} s, resuming from its checkpoints")
