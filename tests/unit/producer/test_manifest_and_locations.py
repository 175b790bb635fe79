"""The manifest enforces that rows add up; output locations follow the configured prefixes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from churn_common.settings import Settings
from producer.kinesis_writer import RetryPolicy
from producer.locations import FileLocations, manifest_key, manifests_prefix, rejected_key
from producer.manifest import Manifest

NOW = datetime(2026, 11, 26, 6, 50, tzinfo=UTC)


def manifest(**overrides: Any) -> Manifest:
    values: dict[str, Any] = {
        "source_uri": "s3://b/data/input/f.csv",
        "source_id": "3f9a0c2be871",
        "etag": "e5eb",
        "status": "processed",
        "rows_read": 10,
        "records_sent": 8,
        "rows_rejected": 2,
        "started_at": NOW,
        "finished_at": NOW,
    }
    return Manifest(**{**values, **overrides})


def test_manifest_carries_the_wire_schema_version() -> None:
    assert manifest().schema_version == 1


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"records_sent": 7}, id="a-row-unaccounted-for"),
        pytest.param({"status": "errored"}, id="errored-without-error"),
        pytest.param({"error": "boom"}, id="processed-with-error"),
    ],
)
def test_manifest_that_does_not_add_up_is_refused(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        manifest(**overrides)


def test_moved_copies_keep_sub_folders_of_the_input_prefix() -> None:
    # GIVEN the default prefixes and a key in a sub-folder of the input prefix
    locations = FileLocations.for_input("data/input/2026/11/f.csv", Settings())
    # THEN the processed and errored copies keep the relative name
    assert locations is not None
    assert locations.processed == "data/processed/2026/11/f.csv"
    assert locations.errored == "data/errored/2026/11/f.csv"


def test_manifests_and_rejects_are_kept_per_source_and_version() -> None:
    # GIVEN two versions of one source THEN each has its own manifest and rejects file under the source's prefix
    settings = Settings()
    keys = {manifest_key(settings, source_id="3f9a0c2be871", version=v) for v in ("v1", "v2")}
    assert keys == {"data/manifests/3f9a0c2be871/v1.json", "data/manifests/3f9a0c2be871/v2.json"}
    assert all(k.startswith(manifests_prefix(settings, "3f9a0c2be871")) for k in keys)
    assert rejected_key(settings, source_id="3f9a0c2be871", version="v1") == "data/rejected/3f9a0c2be871/v1.jsonl"


@pytest.mark.parametrize(
    "key", ["data/processed/f.csv", "data/input/", "elsewhere/data/input/f.csv", "data/input/folder/"]
)
def test_keys_outside_the_input_prefix_have_no_locations(key: str) -> None:
    assert FileLocations.for_input(key, Settings()) is None


def test_retry_delays_grow_exponentially_are_jittered_and_capped() -> None:
    policy = RetryPolicy(max_attempts=10, base_delay_seconds=0.1, max_delay_seconds=2.0)
    assert [policy.delay(n, jitter=lambda: 1.0) for n in range(1, 7)] == [0.2, 0.4, 0.8, 1.6, 2.0, 2.0]
    assert policy.delay(3, jitter=lambda: 0.25) == pytest.approx(0.2)
    assert policy.delay(3, jitter=lambda: 0.0) == 0.0
