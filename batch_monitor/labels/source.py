"""Label objects in S3: listed under ``LABELS_PREFIX``, each named by its version (or ETag when the bucket
keeps no versions), read pinned to that version.

Listing needs ``s3:ListBucket`` on the labels prefix, reading ``s3:GetObject`` / ``s3:GetObjectVersion`` on its
objects (the monitor's policy: infra/terraform/ecs.tf). The head gives the version id the listing lacks; the
read names that version, so an upload between the head and the read is left for the next run rather than
recorded under the wrong version. Without versioning the ETag names the content (a second upload of the same
bytes is the same file); an upload between head and read is then read under the earlier ETag (a bucket without
versioning cannot pin it).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from batch_monitor.labels.formats import is_label_file_name


@dataclass(frozen=True, slots=True)
class LabelObject:
    key: str
    version: str
    version_id: str | None  # None: the bucket keeps no versions, ``version`` is the ETag


def _keys(s3: Any, *, bucket: str, prefix: str) -> Iterator[str]:
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            yield item["Key"]


def label_objects(s3: Any, *, bucket: str, prefix: str) -> tuple[list[LabelObject], list[str]]:
    """The label files under ``prefix`` with their current version, and the keys skipped for their name."""
    found, skipped = [], []
    for key in _keys(s3, bucket=bucket, prefix=prefix):
        if not is_label_file_name(key):
            skipped.append(key)
            continue
        head = s3.head_object(Bucket=bucket, Key=key)
        version_id = head.get("VersionId")
        if version_id in (None, "null"):
            found.append(LabelObject(key, head["ETag"].strip('"'), None))
        else:
            found.append(LabelObject(key, version_id, version_id))
    return found, skipped


def read_label_object(s3: Any, *, bucket: str, item: LabelObject) -> bytes:
    pinned = {} if item.version_id is None else {"VersionId": item.version_id}
    return s3.get_object(Bucket=bucket, Key=item.key, **pinned)["Body"].read()
