"""The local driver derives what the pipeline derives (the producer's manifest key, the monitor's windows) and
times drops to window boundaries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from batch_monitor.core.window import Window
from churn_common.settings import Settings
from churn_common.wire import source_id_for
from infra.local.driver import UploadedVersion, input_key, sleep_to_next_window, window_of
from producer.locations import FileLocations, manifest_key
from producer.manifest import Manifest

NOW = datetime(2026, 11, 26, 6, 50, 7, tzinfo=UTC)


def manifest(**overrides: Any) -> Manifest:
    values: dict[str, Any] = {
        "source_uri": "s3://b/data/input/f.csv",
        "source_id": "3f9a0c2be871",
        "etag": "e5eb",
        "status": "processed",
        "rows_read": 1,
        "records_sent": 1,
        "started_at": NOW,
        "finished_at": NOW,
        "event_time": NOW,
    }
    return Manifest(**{**values, **overrides})


def test_a_dropped_file_lands_where_the_producer_picks_it_up() -> None:
    settings = Settings()
    key = input_key("sub/f.csv", settings=settings)
    locations = FileLocations.for_input(key, settings)
    assert locations is not None
    assert locations.name == "sub/f.csv"


@pytest.mark.parametrize(("version_id", "version"), [("3HL4kqtJ", "3HL4kqtJ"), (None, "e5eb")])
def test_the_manifest_key_is_the_producers_for_the_version(version_id: str | None, version: str) -> None:
    # GIVEN a version as S3 acknowledged it, in a versioned bucket or not
    settings = Settings()
    uploaded = UploadedVersion("b", "data/input/f.csv", "e5eb", version_id)
    # THEN its manifest key is the producer's for the object's source id and version (etag without versioning)
    source_id = source_id_for("s3://b/data/input/f.csv", "e5eb")
    assert uploaded.source_id == source_id
    assert uploaded.manifest_key(settings) == manifest_key(settings, source_id=source_id, version=version)


def test_a_files_window_is_the_monitors_window_of_its_event_time() -> None:
    assert window_of(manifest(), seconds=10) == Window.containing(NOW, seconds=10)
    assert window_of(manifest(), seconds=10).start == datetime(2026, 11, 26, 6, 50, tzinfo=UTC)


def test_a_manifest_without_event_time_has_no_window() -> None:
    with pytest.raises(ValueError, match="no event time"):
        window_of(
            manifest(status="errored", error="unreadable", rows_read=0, records_sent=0, event_time=None), seconds=10
        )


@pytest.mark.parametrize("offset", [0.0, 3.25, 9.99])
def test_sleeping_to_the_next_window_ends_just_past_its_boundary(offset: float) -> None:
    # GIVEN a moment some way into a 10-second window
    start = datetime(2026, 11, 26, 6, 50, tzinfo=UTC).timestamp()
    slept: list[float] = []
    # WHEN the driver sleeps to the next window
    sleep_to_next_window(10, guard=0.3, now=lambda: start + offset, sleep=slept.append)
    # THEN it wakes 0.3 s into the next window
    (seconds,) = slept
    woke = datetime.fromtimestamp(start + offset + seconds, tz=UTC)
    next_window = Window.containing(datetime.fromtimestamp(start, tz=UTC) + timedelta(seconds=10), seconds=10)
    assert Window.containing(woke, seconds=10) == next_window
    assert woke - next_window.start == pytest.approx(timedelta(seconds=0.3), abs=timedelta(microseconds=2))


def test_upload_writes_under_the_input_prefix_with_the_client_given(tmp_path: Path) -> None:
    from infra.local.driver import upload

    # GIVEN a file and an S3 client that records what it was asked to put
    path = tmp_path / "f.csv"
    path.write_bytes(b"a,b\n1,2\n")
    calls: list[dict[str, Any]] = []

    class S3:
        def put_object(self, **kwargs: Any) -> dict[str, Any]:
            calls.append({**kwargs, "Body": kwargs["Body"].read()})
            return {"ETag": '"e5eb"', "VersionId": "v1"}

    # WHEN it is uploaded under another name
    settings = Settings()
    uploaded = upload(path, name="g.csv", settings=settings, s3=S3())
    # THEN the bytes went to the input prefix, and the version is the one S3 acknowledged
    assert calls == [{"Bucket": settings.bucket, "Key": f"{settings.input_prefix}g.csv", "Body": b"a,b\n1,2\n"}]
    assert uploaded == UploadedVersion(settings.bucket, f"{settings.input_prefix}g.csv", "e5eb", "v1")
