"""Drive a running stack as its users do: drop a file into the input prefix, wait for the manifest the producer
writes for it, then for its records to be scored; and time drops to the monitor's windows.

The one way the demo, the chaos run, the simulators and the benchmarks do it, so nothing here re-derives what
the pipeline decides: the manifest's key comes from the producer's :func:`~producer.locations.manifest_key`,
windows and ``as_utc`` from the monitor's :mod:`batch_monitor.core.window`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select

from batch_monitor import Window, as_utc
from churn_common.aws import client
from churn_common.database import predictions, rejected_records
from churn_common.settings import Settings, get_settings
from churn_common.wire import source_id_for
from producer import Manifest, find_manifest, manifest_key

__all__ = [
    "POLL_SECONDS",
    "WINDOW_GUARD_SECONDS",
    "UploadedVersion",
    "Window",
    "as_utc",
    "input_key",
    "manifest_of",
    "settled_records",
    "sleep_to_next_window",
    "upload",
    "wait_for_manifest",
    "wait_for_settled",
    "window_of",
]

POLL_SECONDS = 0.3
WINDOW_GUARD_SECONDS = 0.3  # past the boundary, so a clock a little behind still puts the drop in the new window


@dataclass(frozen=True, slots=True)
class UploadedVersion:
    """One uploaded object version, as S3 acknowledged it."""

    bucket: str
    key: str
    etag: str
    version_id: str | None

    @property
    def source_id(self) -> str:
        return source_id_for(f"s3://{self.bucket}/{self.key}", self.etag)

    @property
    def version(self) -> str:
        return self.version_id or self.etag  # as the producer names it: without versioning, the content

    def manifest_key(self, settings: Settings) -> str:
        return manifest_key(settings, source_id=self.source_id, version=self.version)


def input_key(name: str, *, settings: Settings | None = None) -> str:
    """The key of a file called ``name`` under the input prefix, where the producer picks it up."""
    return f"{(settings or get_settings()).input_prefix}{name}"


def upload(
    path: Path, *, name: str | None = None, settings: Settings | None = None, s3: Any | None = None
) -> UploadedVersion:
    """Put ``path`` under the input prefix (as ``name``, default its file name); streamed from disk. ``s3`` is
    the client to write with (default: the process's own, :func:`churn_common.aws.client`)."""
    settings = settings or get_settings()
    key = input_key(name or path.name, settings=settings)
    with path.open("rb") as body:
        response = (s3 or client("s3")).put_object(Bucket=settings.bucket, Key=key, Body=body)
    return UploadedVersion(settings.bucket, key, response["ETag"].strip('"'), response.get("VersionId"))


def manifest_of(version: UploadedVersion, *, settings: Settings | None = None) -> Manifest | None:
    """The version's manifest if the producer wrote it yet."""
    settings = settings or get_settings()
    return find_manifest(client("s3"), bucket=version.bucket, key=version.manifest_key(settings))


def wait_for_manifest(
    version: UploadedVersion, *, timeout: float, stop: threading.Event | None = None, poll: float = POLL_SECONDS
) -> Manifest:
    """The version's manifest once the producer wrote it; ``TimeoutError`` after ``timeout`` seconds,
    ``InterruptedError`` as soon as ``stop`` is set."""
    settings = get_settings()
    deadline = time.monotonic() + timeout
    while (manifest := manifest_of(version, settings=settings)) is None:
        if time.monotonic() > deadline:
            raise TimeoutError(f"no manifest for s3://{version.bucket}/{version.key} after {timeout:.0f} s")
        if stop is not None:
            if stop.wait(poll):
                raise InterruptedError("stopped")
        else:
            time.sleep(poll)
    return manifest


def settled_records(engine: Engine, source_id: str) -> int:
    """Records of the source the scorer is done with: stored (each record id once) or rejected."""
    with engine.connect() as connection:
        scored = connection.execute(
            select(func.count(func.distinct(predictions.c.record_id))).where(predictions.c.source_id == source_id)
        ).scalar_one()
        rejected = connection.execute(
            select(func.count()).select_from(rejected_records).where(rejected_records.c.source_id == source_id)
        ).scalar_one()
    return int(scored) + int(rejected)


def wait_for_settled(
    engine: Engine,
    source_id: str,
    *,
    expected: int,
    deadline: float,
    on_progress: Callable[[int], None] | None = None,
    poll: float = 0.5,
) -> int:
    """Until ``expected`` records of the source settled (see :func:`settled_records`); ``TimeoutError`` once
    ``time.monotonic()`` passes ``deadline``. ``on_progress`` hears the count after each look."""
    while (settled := settled_records(engine, source_id)) < expected:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {settled}/{expected} records settled")
        if on_progress:
            on_progress(settled)
        time.sleep(poll)
    return settled


def window_of(manifest: Manifest, *, seconds: int) -> Window:
    """The monitoring window of a file's records: they all carry the object's upload time as event time."""
    if manifest.event_time is None:
        raise ValueError(f"the manifest of {manifest.source_uri} names no event time ({manifest.status})")
    return Window.containing(manifest.event_time, seconds=seconds)


def sleep_to_next_window(
    window_seconds: int,
    *,
    guard: float = WINDOW_GUARD_SECONDS,
    now: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Until just after the next window boundary, so what is dropped then falls in a window of its own."""
    moment = now()
    boundary = Window.containing(datetime.fromtimestamp(moment, tz=UTC), seconds=window_seconds).end
    sleep(boundary.timestamp() - moment + guard)
