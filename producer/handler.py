"""Lambda entry point of the producer: ``producer.handler.lambda_handler``.

Triggered by SQS messages that wrap S3 ObjectCreated notifications (ReportBatchItemFailures). For
each dropped CSV: stream it, validate every row, put the valid ones on Kinesis (KPL-aggregated),
write the rejected ones with their reasons and a manifest, then move the object to the processed
prefix. Outcomes per file:

- readable file: every row is sent or rejected (``rows_read == records_sent + rows_rejected``);
- unreadable file (empty, not UTF-8, no usable header): moved to the errored prefix with the reason
  in its manifest; retrying cannot help, so the message is acknowledged;
- transient fault (S3, Kinesis after its retries): the message is reported as a batch item failure
  and processed again later (deterministic record ids make the repeat visible, not double-counted).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError
from pydantic import ValidationError

from churn_common.aws import client
from churn_common.settings import Settings, get_settings
from churn_common.wire import encode, source_id_for
from producer.kinesis_writer import DEFAULT_RETRY, KinesisWriter, RetryPolicy, WriteStats
from producer.locations import FileLocations
from producer.manifest import Manifest, read_manifest, write_manifest
from producer.records import customer_record
from producer.rejects import RejectSpool
from producer.s3_events import ObjectRef, SqsEvent, parse_notification
from producer.shard_map import ShardMap
from producer.splitter import CHUNK_BYTES, CsvSplit, FileFormatError, ValidRow, split_csv

log = logging.getLogger("producer")

PRECONDITION_FAILED = "PreconditionFailed"
# Shard maps survive between invocations of a warm container; a writer refreshes them after resharding.
_SHARD_MAPS: dict[str, ShardMap] = {}


def _hashed(chunks: Iterable[bytes], digest: Any) -> Iterator[bytes]:
    for chunk in chunks:
        digest.update(chunk)
        yield chunk


def _now() -> datetime:
    return datetime.now(tz=UTC)


def _move(s3: Any, *, bucket: str, key: str, etag: str, to_key: str) -> bool:
    """Copy + delete, only if the object is still the version that was processed (a newer upload under
    the same key has a notification of its own and must stay)."""
    try:
        s3.copy_object(
            Bucket=bucket, Key=to_key, CopySource={"Bucket": bucket, "Key": key}, CopySourceIfMatch=f'"{etag}"'
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == PRECONDITION_FAILED:
            return False
        raise
    s3.delete_object(Bucket=bucket, Key=key)
    return True


class AccountingError(RuntimeError):
    """Counts that must agree do not: fail the message rather than write a manifest that lies."""


class FileProcessor:
    """Processes one dropped object end to end; the adapters come in, so tests can hand in their own."""

    def __init__(self, *, settings: Settings, s3: Any, kinesis: Any, retry: RetryPolicy = DEFAULT_RETRY) -> None:
        self.settings, self.s3, self.kinesis, self.retry = settings, s3, kinesis, retry

    def process(self, ref: ObjectRef) -> Manifest | None:
        """The manifest written for the object, or ``None`` when there was nothing to do."""
        locations = FileLocations.for_input(ref.key, self.settings)
        if locations is None:
            log.warning(json.dumps({"message": "object outside the input prefix ignored", "source": ref.uri}))
            return None
        started = _now()
        try:
            obj = self.s3.get_object(Bucket=ref.bucket, Key=ref.key)
        except self.s3.exceptions.NoSuchKey:
            self._log_gone(ref, locations)
            return None
        etag = obj["ETag"].strip('"')
        source_id = source_id_for(ref.uri, etag)
        previous = self._previous_manifest(locations)
        common = {
            "source_uri": ref.uri,
            "source_id": source_id,
            "etag": etag,
            "size_bytes": obj.get("ContentLength"),
            "repeat": previous is not None and previous.source_id == source_id and previous.status == "processed",
            "started_at": started,
        }
        digest = hashlib.sha256()
        body = obj["Body"]
        try:
            split = split_csv(_hashed(body.iter_chunks(CHUNK_BYTES), digest))
        except FileFormatError as exc:
            body.close()
            return self._errored(ref, locations, error=str(exc), common=common)
        event_time: datetime = obj["LastModified"]
        with body, RejectSpool() as rejects:
            stats = self._send(split, rejects, source_id=source_id, event_time=event_time)
            rejected_uri = rejects.upload(self.s3, bucket=self.settings.bucket, key=locations.rejected)
        manifest = Manifest(
            **common,
            status="processed",
            rows_read=split.counts.rows_read,
            records_sent=stats.user_records,
            rows_rejected=split.counts.rows_rejected,
            blank_lines=split.counts.blank_lines,
            extra_columns=list(split.header.extra_columns),
            has_label=split.header.has_label,
            sha256=digest.hexdigest(),
            event_time=event_time,
            finished_at=_now(),
            rejected_uri=rejected_uri,
            moved_to=f"s3://{ref.bucket}/{locations.processed}",
            **_kinesis_figures(stats),
        )
        return self._finish(ref, manifest, locations, to_key=locations.processed)

    def _send(self, split: CsvSplit, rejects: RejectSpool, *, source_id: str, event_time: datetime) -> WriteStats:
        """Valid rows to the stream, the others to the spool; returns once Kinesis acknowledged them all."""
        stream = self.settings.stream_name
        writer = KinesisWriter(
            stream_name=stream, kinesis=self.kinesis, shard_map=_SHARD_MAPS.get(stream), retry=self.retry
        )
        with writer:
            for item in split:
                if isinstance(item, ValidRow):
                    record = customer_record(item.customer, source_id=source_id, row=item.row, event_time=event_time)
                    writer.add(record.record_id, encode(record))
                else:
                    rejects.add(item)
            stats = writer.flush()
        _SHARD_MAPS[stream] = writer.shard_map
        if stats.user_records != split.counts.rows_valid:
            raise AccountingError(f"{stats.user_records} records acknowledged for {split.counts.rows_valid} rows")
        return stats

    def _previous_manifest(self, locations: FileLocations) -> Manifest | None:
        """Only used to tell a repeat: an unreadable old manifest must not block the new file."""
        try:
            return read_manifest(self.s3, bucket=self.settings.bucket, key=locations.manifest)
        except ValidationError as exc:
            log.warning(
                json.dumps({"message": "previous manifest unreadable", "key": locations.manifest, "error": str(exc)})
            )
            return None

    def _errored(self, ref: ObjectRef, locations: FileLocations, *, error: str, common: dict[str, Any]) -> Manifest:
        manifest = Manifest(
            **{**common, "repeat": False},
            status="errored",
            error=error,
            finished_at=_now(),
            moved_to=f"s3://{ref.bucket}/{locations.errored}",
        )
        return self._finish(ref, manifest, locations, to_key=locations.errored)

    def _finish(self, ref: ObjectRef, manifest: Manifest, locations: FileLocations, *, to_key: str) -> Manifest:
        # Manifest first: if the move fails, the retry re-sends (a visible repeat) instead of losing the manifest.
        write_manifest(self.s3, manifest, bucket=self.settings.bucket, key=locations.manifest)
        moved = _move(self.s3, bucket=ref.bucket, key=ref.key, etag=manifest.etag, to_key=to_key)
        log.info(json.dumps(_log_line(manifest, moved=moved), default=str))
        return manifest

    def _log_gone(self, ref: ObjectRef, locations: FileLocations) -> None:
        manifest = read_manifest(self.s3, bucket=self.settings.bucket, key=locations.manifest)
        if manifest is not None:
            log.info(json.dumps({"message": "object already processed and moved", "source": ref.uri}))
        else:
            log.warning(json.dumps({"message": "object not found and never processed", "source": ref.uri}))


def _kinesis_figures(stats: WriteStats) -> dict[str, int]:
    return {
        "kinesis_records": stats.kinesis_records,
        "put_calls": stats.put_calls,
        "bytes_sent": stats.bytes,
        "retried_entries": stats.retried_entries,
    }


def _log_line(manifest: Manifest, *, moved: bool) -> dict[str, Any]:
    duration = (manifest.finished_at - manifest.started_at).total_seconds()
    line = manifest.model_dump(
        include={
            "source_uri",
            "source_id",
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
        }
    )
    return {"message": f"file {manifest.status}", **line, "moved": moved, "duration_s": round(duration, 3)}


def handle(event: dict[str, Any], *, processor: FileProcessor) -> dict[str, Any]:
    failures: list[dict[str, str]] = []
    for record in SqsEvent.model_validate(event).records:
        try:
            for ref in parse_notification(record.body):
                processor.process(ref)
        except Exception as exc:
            # Retried by SQS, and dead-lettered after the queue's maxReceiveCount: never dropped.
            failure = {"message": "message failed, will be retried", "message_id": record.message_id, "error": str(exc)}
            log.exception(json.dumps(failure))
            failures.append({"itemIdentifier": record.message_id})
    return {"batchItemFailures": failures}


def lambda_handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    return handle(event, processor=FileProcessor(settings=get_settings(), s3=client("s3"), kinesis=client("kinesis")))
