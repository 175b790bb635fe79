"""Processing of one dropped object version, end to end, whatever event announced it.

Every row of a readable file is sent or rejected; an unreadable file goes to the errored prefix and its
message is acknowledged (retrying cannot help); a transient fault raises so the message is retried.
Exactly once per version: the version the event names is read, and its move deletes that version only.
Manifests are found by listing their prefix, never by reading a key that may not exist: S3 answers a
missing key with 403, not 404, to a caller without ``s3:ListBucket`` on the whole bucket. A file too long
for one invocation continues in a fresh one (:mod:`producer.continuation`).

Design notes: docs/producer.md#one-object-version-end-to-end
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import chain
from typing import Any

from botocore.exceptions import ClientError

from churn_common.aws import client
from churn_common.errors import PermanentError
from churn_common.settings import Settings
from churn_common.wire import encode, source_id_for
from producer.continuation import (
    NO_DEADLINE,
    Continuation,
    Deadline,
    SegmentTotals,
    encode_header,
    handed_on_key,
)
from producer.kinesis_writer import DEFAULT_RETRY, KinesisWriter, RetryPolicy, WriteStats
from producer.locations import MANIFEST_SUFFIX, FileLocations, manifest_key, manifests_prefix, rejected_key
from producer.logs import log
from producer.manifest import Manifest, read_manifest, write_manifest
from producer.object_formats import gunzip, is_readable_name, looks_gzipped, unsupported_reason
from producer.records import customer_record
from producer.rejects import RejectSpool
from producer.s3_events import ObjectRef
from producer.segments import AlignedChunks, skipped
from producer.shard_map import ShardMap
from producer.splitter import CHUNK_BYTES, CsvSplit, FileFormatError, RejectedRow, ValidRow, split_csv

PRECONDITION_FAILED = "PreconditionFailed"
GONE_CODES = frozenset({"NoSuchKey", "NoSuchVersion", "404"})
# Shard maps survive between invocations of a warm container; a writer refreshes them after resharding.
_SHARD_MAPS: dict[str, ShardMap] = {}


def _now() -> datetime:
    return datetime.now(tz=UTC)


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _hashed(chunks: Iterable[bytes], digest: Any) -> Iterator[bytes]:
    for chunk in chunks:
        digest.update(chunk)
        yield chunk


def _peeked(chunks: Iterator[bytes]) -> tuple[bytes, Iterator[bytes]]:
    first = next((chunk for chunk in chunks if chunk), b"")
    return first, chain([first], chunks)


class AccountingError(PermanentError, RuntimeError):
    """Counts that must agree do not: fail the message rather than write a manifest that lies. Permanent:
    a bug, which a retry repeats."""


class ObjectGoneError(PermanentError, LookupError):
    """The named version no longer exists (moved after processing, or deleted by someone)."""


class ObjectReplacedError(PermanentError, LookupError):
    """An unversioned bucket holds other content at the key now; the named content cannot be read."""


class _InterruptedError(Exception):
    """The bytes went bad part way (a truncated gzip): what was sent stays sent and counted."""

    def __init__(self, cause: FileFormatError, stats: WriteStats) -> None:
        super().__init__(str(cause))
        self.cause, self.stats = cause, stats


@dataclass(slots=True)
class _Segment:
    """One segment of one object version: where it starts and what the segments before it counted."""

    bucket: str
    key: str
    etag: str
    version_id: str | None
    source_id: str
    event_time: datetime
    started_at: datetime
    size_bytes: int | None = None
    repeat: bool = False
    index: int = 0
    offset: int = 0
    lines_before: int = 1
    header_line: bytes | None = None
    extra_columns: list[str] = field(default_factory=list)
    has_label: bool | None = None
    compressed: bool = False
    totals: SegmentTotals = field(default_factory=SegmentTotals)
    rejected_uris: list[str] = field(default_factory=list)

    @property
    def version(self) -> str:
        return self.version_id or self.etag  # without versioning, the content is the version

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    def manifest_fields(self, manifest_uri: str) -> dict[str, Any]:
        """What every manifest of this version says about the object, whatever the outcome."""
        return {
            "source_uri": self.uri,
            "source_id": self.source_id,
            "etag": self.etag,
            "version_id": self.version_id,
            "size_bytes": self.size_bytes,
            "repeat": self.repeat,
            "started_at": self.started_at,
            "manifest_uri": manifest_uri,
        }


class FileProcessor:
    """Processes dropped object versions; the adapters come in, so tests can hand in their own."""

    def __init__(
        self,
        *,
        settings: Settings,
        s3: Any,
        kinesis: Any,
        sqs: Any | None = None,
        retry: RetryPolicy = DEFAULT_RETRY,
        deadline: Deadline = NO_DEADLINE,
    ) -> None:
        self.settings, self.s3, self.kinesis, self.retry, self.deadline = settings, s3, kinesis, retry, deadline
        self._sqs = sqs

    # --- entry points -------------------------------------------------------------------------------

    def process(self, ref: ObjectRef) -> Manifest | None:
        """The manifest of the object version, or ``None`` when there was nothing to do (or the file goes
        on in a later invocation)."""
        locations = FileLocations.for_input(ref.key, self.settings)
        if locations is None:
            log.info("not a file under the input prefix: ignored", extra={"source": ref.uri})
            return None
        started = _now()
        obj = self._open(ref)
        if obj is None:
            return None
        body = obj["Body"]
        etag = obj["ETag"].strip('"')
        version_id = obj.get("VersionId")
        source_id = source_id_for(ref.uri, etag)
        segment = _Segment(
            bucket=ref.bucket,
            key=ref.key,
            etag=etag,
            version_id=version_id,
            source_id=source_id,
            event_time=obj["LastModified"],
            started_at=started,
            size_bytes=obj.get("ContentLength"),
        )
        key = manifest_key(self.settings, source_id=source_id, version=segment.version)
        known = self._manifest_keys(source_id)
        if key in known:
            body.close()
            return self._already_processed(segment, key, locations=locations)
        if self._handed_on_before(segment, known):
            body.close()
            return None
        segment.repeat = any(self._is_manifest(k, source_id) for k in known)
        if not is_readable_name(ref.key):
            body.close()
            return self._errored(segment, locations, key, error=unsupported_reason(ref.key))
        with body:
            return self._stream(segment, locations, key, raw=body.iter_chunks(CHUNK_BYTES))

    def resume(self, continuation: Continuation) -> Manifest | None:
        """Stream the segment a continuation names; ``None`` while the file goes on after it."""
        locations = FileLocations.for_input(continuation.key, self.settings)
        assert locations is not None, continuation.key
        segment = _Segment(
            bucket=continuation.bucket,
            key=continuation.key,
            etag=continuation.etag,
            version_id=continuation.version_id,
            source_id=continuation.source_id,
            event_time=continuation.event_time,
            started_at=continuation.started_at,
            size_bytes=continuation.size_bytes,
            repeat=continuation.repeat,
            index=continuation.segment,
            offset=continuation.offset,
            lines_before=continuation.lines_before,
            header_line=continuation.header_line,
            extra_columns=list(continuation.extra_columns),
            has_label=continuation.has_label,
            compressed=continuation.compressed,
            totals=continuation.totals,
            rejected_uris=list(continuation.rejected_uris),
        )
        key = manifest_key(self.settings, source_id=segment.source_id, version=segment.version)
        known = self._manifest_keys(segment.source_id)
        if key in known:
            log.info("continuation of a finished file ignored", extra={"source": continuation.uri})
            return None
        if self._handed_on_before(segment, known):
            return None
        request: dict[str, Any] = {"Bucket": segment.bucket, "Key": segment.key}
        request |= {"VersionId": segment.version_id} if segment.version_id else {"IfMatch": f'"{segment.etag}"'}
        if not segment.compressed:
            request["Range"] = f"bytes={segment.offset}-"
        try:
            obj = self.s3.get_object(**request)
        except ClientError as exc:
            if _error_code(exc) not in GONE_CODES | {PRECONDITION_FAILED}:
                raise
            error = f"object version gone after {segment.totals.rows_read} rows were read: the rest is lost"
            return self._errored(segment, locations, key, error=error)
        body = obj["Body"]
        with body:
            return self._stream(segment, locations, key, raw=body.iter_chunks(CHUNK_BYTES))

    # --- streaming ----------------------------------------------------------------------------------

    def _stream(
        self, segment: _Segment, locations: FileLocations, key: str, *, raw: Iterator[bytes]
    ) -> Manifest | None:
        digest = hashlib.sha256()  # of the whole object: only a first segment can report it
        first, raw = _peeked(_hashed(raw, digest) if segment.index == 0 else raw)
        if segment.index == 0:
            segment.compressed = looks_gzipped(first)
        decoded: Iterable[bytes] = gunzip(raw) if segment.compressed else raw
        if segment.index and segment.compressed:
            decoded = skipped(decoded, segment.offset)
        chunks = AlignedChunks(decoded, start_offset=segment.offset, should_stop=self.deadline.expiring)
        source: Iterable[bytes] = chunks
        if segment.header_line is not None:
            source = chain([segment.header_line + b"\n"], chunks)
        with RejectSpool() as rejects:
            try:
                split = split_csv(source)
            except FileFormatError as exc:
                return self._errored(segment, locations, key, error=str(exc))
            if segment.index == 0:
                segment.extra_columns = list(split.header.extra_columns)
                segment.has_label = split.header.has_label
                segment.header_line = chunks.first_line
            try:
                stats = self._send(segment, split, rejects)
            except _InterruptedError as interrupted:
                self._add(segment, split, interrupted.stats, rejects)
                return self._errored(segment, locations, key, error=str(interrupted.cause))
            self._add(segment, split, stats, rejects)
        if chunks.stopped_early:
            self._hand_on(segment, chunks)
            return None
        totals = segment.totals
        manifest = Manifest(
            **segment.manifest_fields(self._manifest_uri(key)),
            status="processed",
            **totals.model_dump(),
            extra_columns=segment.extra_columns,
            has_label=segment.has_label,
            sha256=digest.hexdigest() if segment.index == 0 else None,
            segments=segment.index + 1,
            rejected_uri=segment.rejected_uris[0] if segment.rejected_uris else None,
            rejected_uris=segment.rejected_uris,
            event_time=segment.event_time,
            finished_at=_now(),
            moved_to=f"s3://{segment.bucket}/{locations.processed}",
        )
        return self._finish(segment, manifest, key, to_key=locations.processed)

    def _send(self, segment: _Segment, split: CsvSplit, rejects: RejectSpool) -> WriteStats:
        """Valid rows to the stream, the others to the spool, numbered on from the segments before (the chunks
        end early once the deadline nears). Returns once Kinesis acknowledged all."""
        stream = self.settings.stream_name
        writer = KinesisWriter(
            stream_name=stream, kinesis=self.kinesis, shard_map=_SHARD_MAPS.get(stream), retry=self.retry
        )
        rows_before, line_shift = segment.totals.rows_read, segment.lines_before - 1
        source_id, event_time = segment.source_id, segment.event_time
        with writer:
            try:
                for item in split:
                    if isinstance(item, ValidRow):
                        row = item.row + rows_before
                        record = customer_record(item.customer, source_id=source_id, row=row, event_time=event_time)
                        writer.add(record.record_id, encode(record))
                    else:
                        rejects.add(_renumbered(item, rows_before=rows_before, line_shift=line_shift))
            except FileFormatError as exc:
                raise _InterruptedError(exc, writer.flush()) from None
            stats = writer.flush()
        _SHARD_MAPS[stream] = writer.shard_map
        if stats.user_records != split.counts.rows_valid:
            raise AccountingError(f"{stats.user_records} records acknowledged for {split.counts.rows_valid} rows")
        return stats

    def _add(self, segment: _Segment, split: CsvSplit, stats: WriteStats, rejects: RejectSpool) -> None:
        """This segment's figures and rejects file into the running totals."""
        counts = split.counts
        segment.totals = segment.totals.plus(
            SegmentTotals(
                rows_read=counts.rows_read,
                records_sent=stats.user_records,
                rows_rejected=counts.rows_rejected,
                blank_lines=counts.blank_lines,
                kinesis_records=stats.kinesis_records,
                put_calls=stats.put_calls,
                bytes_sent=stats.bytes,
                retried_entries=stats.retried_entries,
            )
        )
        segment.lines_before += counts.rows_read + counts.blank_lines
        key = rejected_key(self.settings, source_id=segment.source_id, version=segment.version, part=segment.index)
        uri = rejects.upload(self.s3, bucket=self.settings.bucket, key=key)
        if uri is not None:
            segment.rejected_uris.append(uri)

    # --- hand-over to the next invocation -----------------------------------------------------------

    def _hand_on(self, segment: _Segment, chunks: AlignedChunks) -> None:
        assert segment.header_line is not None
        continuation = Continuation(
            bucket=segment.bucket,
            key=segment.key,
            etag=segment.etag,
            version_id=segment.version_id,
            source_id=segment.source_id,
            size_bytes=segment.size_bytes,
            repeat=segment.repeat,
            started_at=segment.started_at,
            event_time=segment.event_time,
            segment=segment.index + 1,
            offset=chunks.offset,
            lines_before=segment.lines_before,
            header_line_b64=encode_header(segment.header_line),
            compressed=segment.compressed,
            extra_columns=segment.extra_columns,
            has_label=bool(segment.has_label),
            totals=segment.totals,
            rejected_uris=segment.rejected_uris,
        )
        body = continuation.model_dump_json()
        marker = handed_on_key(
            self.settings, source_id=segment.source_id, version=segment.version, segment=segment.index
        )
        self.s3.put_object(Bucket=self.settings.bucket, Key=marker, Body=body.encode(), ContentType="application/json")
        self._send_continuation(body)
        log.info(
            "segment done, the rest goes on in a fresh invocation",
            extra={
                "source": segment.uri,
                "segment": segment.index,
                "next_offset": chunks.offset,
                "rows_so_far": segment.totals.rows_read,
            },
        )

    def _handed_on_before(self, segment: _Segment, known: set[str]) -> bool:
        """A redelivery of a segment that was handed on already: send its continuation again (it may not
        have gone out) instead of streaming the segment twice."""
        marker = handed_on_key(
            self.settings, source_id=segment.source_id, version=segment.version, segment=segment.index
        )
        if marker not in known:
            return False
        body = self.s3.get_object(Bucket=self.settings.bucket, Key=marker)["Body"].read().decode()
        self._send_continuation(body)
        log.info("segment handed on before: continuation sent again", extra={"source": segment.uri})
        return True

    def _send_continuation(self, body: str) -> None:
        sqs = self._sqs or client("sqs")
        queue_url = sqs.get_queue_url(QueueName=self.settings.file_drops_queue)["QueueUrl"]
        sqs.send_message(QueueUrl=queue_url, MessageBody=body)

    # --- reading, outcomes, moving ------------------------------------------------------------------

    def _open(self, ref: ObjectRef) -> dict[str, Any] | None:
        try:
            return self._get(ref)
        except ObjectGoneError:
            log.info("object version gone: processed and moved earlier", extra=_named(ref))
        except ObjectReplacedError:
            log.error(
                "object overwritten before it was read and the bucket keeps no versions: "
                "this upload is lost (turn on bucket versioning)",
                extra=_named(ref),
            )
        return None

    def _get(self, ref: ObjectRef) -> dict[str, Any]:
        """The version the event names; without a version id, the content the event names (ETag)."""
        request: dict[str, Any] = {"Bucket": ref.bucket, "Key": ref.key}
        if ref.version_id:
            request["VersionId"] = ref.version_id
        elif ref.etag:
            request["IfMatch"] = f'"{ref.etag}"'
        try:
            return self.s3.get_object(**request)
        except ClientError as exc:
            code = _error_code(exc)
            if code in GONE_CODES:
                raise ObjectGoneError(ref.uri) from None
            if code != PRECONDITION_FAILED:
                raise
        # A newer upload is current; the event's content may still be an older version of the key.
        version_id = self._version_with_etag(ref)
        if version_id is None:
            raise ObjectReplacedError(ref.uri)
        return self.s3.get_object(Bucket=ref.bucket, Key=ref.key, VersionId=version_id)

    def _version_with_etag(self, ref: ObjectRef) -> str | None:
        """The newest stored version of the key holding the content the event named (events without a
        version id: S3 -> SNS paths, emulators). ``None`` when the bucket keeps no such version."""
        pages = self.s3.get_paginator("list_object_versions").paginate(Bucket=ref.bucket, Prefix=ref.key)
        matching = [
            version
            for page in pages
            for version in page.get("Versions", [])
            if version["Key"] == ref.key and version["ETag"].strip('"') == ref.etag
        ]
        if not matching:
            return None
        return str(max(matching, key=lambda version: version["LastModified"])["VersionId"])

    def _manifest_uri(self, key: str) -> str:
        return f"s3://{self.settings.bucket}/{key}"

    def _prefix(self, source_id: str) -> str:
        return manifests_prefix(self.settings, source_id)

    def _is_manifest(self, key: str, source_id: str) -> bool:
        """A version's manifest, not one of its hand-over markers (which lie one folder deeper)."""
        name = key.removeprefix(self._prefix(source_id))
        return name.endswith(MANIFEST_SUFFIX) and "/" not in name

    def _manifest_keys(self, source_id: str) -> set[str]:
        """Manifests (and hand-over markers) of every version processed with this content."""
        pages = self.s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.settings.bucket, Prefix=self._prefix(source_id)
        )
        return {item["Key"] for page in pages for item in page.get("Contents", [])}

    def _already_processed(self, segment: _Segment, key: str, *, locations: FileLocations) -> Manifest:
        """A redelivery: the manifest stands; only a move that was interrupted is completed."""
        manifest = read_manifest(self.s3, bucket=self.settings.bucket, key=key)
        to_key = locations.processed if manifest.status == "processed" else locations.errored
        moved = self._move(segment, to_key=to_key)
        log.info("object version already processed", extra={"source": segment.uri, "moved": moved})
        return manifest

    def _errored(self, segment: _Segment, locations: FileLocations, key: str, *, error: str) -> Manifest:
        manifest = Manifest(
            **{**segment.manifest_fields(self._manifest_uri(key)), "repeat": False},
            **segment.totals.model_dump(),
            extra_columns=segment.extra_columns,
            has_label=segment.has_label,
            segments=segment.index + 1,
            rejected_uri=segment.rejected_uris[0] if segment.rejected_uris else None,
            rejected_uris=segment.rejected_uris,
            status="errored",
            error=error,
            finished_at=_now(),
            moved_to=f"s3://{segment.bucket}/{locations.errored}",
        )
        return self._finish(segment, manifest, key, to_key=locations.errored)

    def _finish(self, segment: _Segment, manifest: Manifest, key: str, *, to_key: str) -> Manifest:
        # Manifest first: if the move fails, the redelivery finds it and only completes the move.
        write_manifest(self.s3, manifest, bucket=self.settings.bucket, key=key)
        moved = self._move(segment, to_key=to_key)
        log.info(f"file {manifest.status}", extra=_log_fields(manifest, moved=moved))
        return manifest

    def _move(self, segment: _Segment, *, to_key: str) -> bool:
        """Copy then delete exactly the processed version; a newer upload under the key is never touched."""
        source: dict[str, str] = {"Bucket": segment.bucket, "Key": segment.key}
        condition: dict[str, str] = {}
        if segment.version_id:
            source["VersionId"] = segment.version_id
        else:
            condition = {"CopySourceIfMatch": f'"{segment.etag}"'}
        try:
            self.s3.copy_object(Bucket=segment.bucket, Key=to_key, CopySource=source, **condition)
        except ClientError as exc:
            if _error_code(exc) in GONE_CODES | {PRECONDITION_FAILED}:
                return False
            raise
        if segment.version_id:
            self.s3.delete_object(Bucket=segment.bucket, Key=segment.key, VersionId=segment.version_id)
            return True
        try:
            self.s3.delete_object(Bucket=segment.bucket, Key=segment.key, IfMatch=f'"{segment.etag}"')
        except ClientError as exc:
            if _error_code(exc) != PRECONDITION_FAILED:
                raise
            return False
        return True


def _renumbered(item: RejectedRow, *, rows_before: int, line_shift: int) -> RejectedRow:
    if not rows_before and not line_shift:
        return item
    return item.model_copy(update={"row": item.row + rows_before, "line": item.line + line_shift})


def _named(ref: ObjectRef) -> dict[str, Any]:
    return {"source": ref.uri, "version_id": ref.version_id, "etag": ref.etag}


def _log_fields(manifest: Manifest, *, moved: bool) -> dict[str, Any]:
    duration = (manifest.finished_at - manifest.started_at).total_seconds()
    line = manifest.model_dump(
        include={
            "source_uri",
            "source_id",
            "version_id",
            "status",
            "error",
            "repeat",
            "rows_read",
            "records_sent",
            "rows_rejected",
            "kinesis_records",
            "put_calls",
            "bytes_sent",
            "retried_entries",
            "extra_columns",
            "segments",
        }
    )
    return {**line, "moved": moved, "duration_s": round(duration, 3)}
