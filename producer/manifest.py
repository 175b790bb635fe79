"""The manifest of one processed file: what was read, sent and rejected, so every row is accounted for.

It also maps the compact ``source_id`` carried by each record back to the object it came from.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from churn_common.wire import SCHEMA_VERSION

ManifestStatus = Literal["processed", "errored"]


class Manifest(BaseModel):
    model_config = ConfigDict(frozen=True)

    source_uri: str
    source_id: str
    etag: str
    version_id: str | None = Field(None, description="the S3 object version processed (versioned buckets)")
    manifest_uri: str | None = Field(None, description="where this manifest is kept: one per source and version")
    size_bytes: int | None = None
    status: ManifestStatus
    error: str | None = None
    repeat: bool = Field(False, description="another version with the same URI and content was processed before")
    rows_read: int = Field(0, ge=0)
    records_sent: int = Field(0, ge=0)
    rows_rejected: int = Field(0, ge=0)
    blank_lines: int = Field(0, ge=0)
    extra_columns: list[str] = Field(default_factory=list)
    has_label: bool | None = None
    sha256: str | None = Field(None, description="of the whole object, computed while streaming it")
    event_time: datetime | None = Field(None, description="event time of every record: the object's upload time")
    started_at: datetime
    finished_at: datetime
    schema_version: int = SCHEMA_VERSION
    rejected_uri: str | None = Field(
        None, description="the rejects file (of the first segment, when there are several)"
    )
    rejected_uris: list[str] = Field(default_factory=list, description="every rejects file, in row order")
    segments: int = Field(1, ge=1, description="invocations the file was streamed in")
    moved_to: str | None = None
    kinesis_records: int = Field(0, ge=0)
    put_calls: int = Field(0, ge=0)
    bytes_sent: int = Field(0, ge=0)
    retried_entries: int = Field(0, ge=0)

    @model_validator(mode="after")
    def _rows_add_up(self) -> Manifest:
        if self.rows_read != self.records_sent + self.rows_rejected:
            raise ValueError(
                f"rows_read ({self.rows_read}) != records_sent ({self.records_sent})"
                f" + rows_rejected ({self.rows_rejected})"
            )
        if (self.status == "errored") != (self.error is not None):
            raise ValueError("an errored manifest needs an error, a processed one must not have one")
        return self


def read_manifest(s3: Any, *, bucket: str, key: str) -> Manifest:
    """A manifest known to exist (listed first: see :mod:`producer.file_processor` on 403 vs 404)."""
    return Manifest.model_validate_json(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def write_manifest(s3: Any, manifest: Manifest, *, bucket: str, key: str) -> None:
    s3.put_object(
        Bucket=bucket, Key=key, Body=manifest.model_dump_json(indent=2).encode(), ContentType="application/json"
    )


def find_manifest(s3: Any, *, bucket: str, key: str) -> Manifest | None:
    """The manifest at ``key`` if it was written yet, asked by listing (a missing key read directly is a 403
    for a caller who may list only the manifests prefix)."""
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=key).get("Contents", [])
    if not any(item["Key"] == key for item in listed):
        return None
    return read_manifest(s3, bucket=bucket, key=key)
