"""Drop a file into the local stack's input prefix and wait for its manifest: the one way the demo, the
chaos run and the benchmarks do it, so the manifest's key is derived in one place."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

from churn_common.aws import client
from churn_common.settings import Settings, get_settings
from churn_common.wire import source_id_for
from producer.locations import manifest_key
from producer.manifest import Manifest, find_manifest

POLL_SECONDS = 0.3


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

    def manifest_key(self, settings: Settings) -> str:
        return manifest_key(settings, source_id=self.source_id, version=self.version_id or self.etag)


def upload(path: Path, *, name: str | None = None, settings: Settings | None = None) -> UploadedVersion:
    """Put ``path`` under the input prefix (as ``name``, default its file name); streamed from disk."""
    settings = settings or get_settings()
    key = f"{settings.input_prefix}{name or path.name}"
    with path.open("rb") as body:
        response = client("s3").put_object(Bucket=settings.bucket, Key=key, Body=body)
    return UploadedVersion(settings.bucket, key, response["ETag"].strip('"'), response.get("VersionId"))


def manifest_of(version: UploadedVersion, *, settings: Settings | None = None) -> Manifest | None:
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
