"""The producer Lambda on the emulator: a file dropped into S3 arrives on the stream exactly once,
with its rejects, manifest and move; repeats, unreadable files and faults are handled as promised."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse

from churn_common.aws import client
from churn_common.settings import get_settings
from churn_common.wire import FEATURE_SLICE, LABEL_INDEX, source_id_for
from producer.file_processor import FileProcessor
from producer.handler import handle, lambda_handler
from producer.kinesis_writer import RetryPolicy
from producer.logs import log
from tests.integration.producer.conftest import Drops, assert_in_order_per_shard, expected_rows, read_stream, sqs_event

pytestmark = pytest.mark.integration

BAD_LINES = (
    b"8,0,38,0,4370,71,5,17,7,1,1,30,197.64,0",  # age group 7
    b"8,0,38,0,abc,71,5,17,3,1,1,,197.64,0",  # non-numeric and blank
    b"8,0,38,0,4370,71,5,17,3,1,1",  # ragged
)
FAST_RETRY = RetryPolicy(max_attempts=3, base_delay_seconds=0.001, max_delay_seconds=0.01)


def with_bad_lines(data: bytes) -> bytes:
    """The file with three bad rows after its first data row (rows 2, 3 and 4)."""
    header, first, rest = data.split(b"\n", 2)
    return b"\n".join([header, first, *BAD_LINES, rest])


def test_dropped_file_arrives_once_with_rejects_manifest_and_move(drops: Drops, customer_csv: bytes) -> None:
    # GIVEN a real file with three bad rows, dropped into the input prefix
    data = with_bad_lines(customer_csv)
    key = drops.put("customers.csv", data)
    last_modified = drops.s3.head_object(Bucket=drops.bucket, Key=key)["LastModified"]
    # WHEN the notification reaches the handler as the Lambda service delivers it
    response = lambda_handler(drops.event(), None)
    # THEN the message is acknowledged
    assert response == {"batchItemFailures": []}
    # AND every valid row is on the stream exactly once, with its values, label and the upload time
    expected = expected_rows(customer_csv)
    valid_rows = [1, *range(5, len(expected) + 4)]
    etag = drops.s3.head_object(Bucket=drops.bucket, Key="data/processed/customers.csv")["ETag"].strip('"')
    source_id = source_id_for(f"s3://{drops.bucket}/{key}", etag)
    stream = read_stream(get_settings().stream_name)
    assert Counter(stream.record_ids) == Counter(f"{source_id}:{row}" for row in valid_rows)
    by_row = {r.fields[2]: r.fields for r in stream.records}
    for row in valid_rows:
        file_row = row if row == 1 else row - 3
        assert (*by_row[row][FEATURE_SLICE], by_row[row][LABEL_INDEX]) == expected[file_row]
    assert {r.fields[3] for r in stream.records} == {int(last_modified.timestamp() * 1000)}
    assert all(r.partition_key.startswith(f"{source_id}:") for r in stream.records)
    # AND the rejects file has the three bad rows with their reasons
    manifest = drops.manifest("customers.csv")
    rejects = drops.rejects(manifest)
    assert [(r["row"], r["raw"].encode()) for r in rejects] == list(zip([2, 3, 4], BAD_LINES, strict=True))
    assert rejects[0]["reasons"] == ["age_group: Input should be less than or equal to 5 (got '7')"]
    assert [r.split(":")[0] for r in rejects[1]["reasons"]] == ["seconds_of_use", "age"]
    assert rejects[2]["reasons"] == [
        "row has 11 cells, the header has 14",
        "age: no cell (the row is too short)",
        "customer_value: no cell (the row is too short)",
    ]
    # AND the manifest accounts for every row
    assert manifest["status"] == "processed"
    assert (manifest["rows_read"], manifest["records_sent"], manifest["rows_rejected"]) == (
        len(expected) + 3,
        len(expected),
        3,
    )
    assert manifest["source_id"] == source_id
    assert manifest["repeat"] is False
    assert manifest["schema_version"] == 1
    assert manifest["rejected_uri"].startswith(f"s3://{drops.bucket}/data/rejected/")
    assert manifest["sha256"] == hashlib.sha256(data).hexdigest()
    assert datetime.fromisoformat(manifest["event_time"]) == last_modified.astimezone(UTC)
    # AND the object moved from the input prefix to the processed prefix
    assert key not in drops.stored_keys()
    assert "data/processed/customers.csv" in drops.stored_keys()


def test_redropped_file_gives_the_same_record_ids_and_a_repeat_manifest(drops: Drops, customer_csv: bytes) -> None:
    # GIVEN a file processed once
    drops.put("again.csv", customer_csv)
    lambda_handler(drops.event(), None)
    first = read_stream(get_settings().stream_name).record_ids
    # WHEN the very same bytes are dropped again under the same name and processed
    drops.put("again.csv", customer_csv)
    response = lambda_handler(drops.event(include_test_event=False), None)
    # THEN the second pass sent the same ids (each id now twice on the stream) and says it is a repeat
    assert response == {"batchItemFailures": []}
    both = Counter(read_stream(get_settings().stream_name).record_ids)
    assert set(both) == set(first)
    assert set(both.values()) == {2}
    first_manifest, manifest = drops.manifests_of("again.csv")
    assert first_manifest["repeat"] is False
    assert manifest["repeat"] is True
    assert manifest["records_sent"] == len(first)


def test_multipart_upload_events_process_the_object_once(drops: Drops, customer_csv: bytes) -> None:
    # GIVEN a multipart upload, which notifies twice (Put and CompleteMultipartUpload)
    key = f"{get_settings().input_prefix}multipart.csv"
    upload = drops.s3.create_multipart_upload(Bucket=drops.bucket, Key=key)
    part = drops.s3.upload_part(
        Bucket=drops.bucket, Key=key, UploadId=upload["UploadId"], PartNumber=1, Body=customer_csv
    )
    drops.s3.complete_multipart_upload(
        Bucket=drops.bucket,
        Key=key,
        UploadId=upload["UploadId"],
        MultipartUpload={"Parts": [{"ETag": part["ETag"], "PartNumber": 1}]},
    )
    messages = drops.messages(expected=2, include_test_event=False)
    assert len(messages) == 2
    # WHEN each notification is delivered in its own invocation
    responses = [lambda_handler(sqs_event([m], queue_arn=drops.resources.file_drops_queue_arn), None) for m in messages]
    # THEN both are acknowledged and every row is on the stream exactly once
    assert responses == [{"batchItemFailures": []}] * 2
    ids = read_stream(get_settings().stream_name).record_ids
    assert len(ids) == len(set(ids)) == len(expected_rows(customer_csv))


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        pytest.param(b"", "empty file", id="empty"),
        pytest.param(b"\x1f\x8b\x08\x00garbage", "gzip data", id="gzip"),
        pytest.param(b"name,city\nann,paris\n", "no churn CSV header", id="other-csv"),
    ],
)
def test_unreadable_file_goes_to_errored_with_its_reason(drops: Drops, data: bytes, reason: str) -> None:
    # GIVEN a file that is not a churn CSV
    drops.put("broken.csv", data)
    # WHEN handled
    response = lambda_handler(drops.event(), None)
    # THEN the message is acknowledged (retrying cannot help), the object is in errored/ with the reason
    assert response == {"batchItemFailures": []}
    manifest = drops.manifest("broken.csv")
    assert manifest["status"] == "errored"
    assert reason in manifest["error"]
    assert (manifest["rows_read"], manifest["records_sent"], manifest["rows_rejected"]) == (0, 0, 0)
    assert "data/errored/broken.csv" in drops.stored_keys()
    assert "data/input/broken.csv" not in drops.stored_keys()
    assert read_stream(get_settings().stream_name).records == []


def test_partial_put_failures_are_retried_and_nothing_is_lost_or_duplicated(
    drops: Drops, customer_csv: bytes, put_records_faults
) -> None:
    # GIVEN Kinesis throttles or fails some entries of the first two PutRecords calls
    faults = put_records_faults(
        lambda call, position, _entry: (
            ("ProvisionedThroughputExceededException", "InternalFailure")[position % 2]
            if call < 2 and position % 3 != 2
            else None
        )
    )
    drops.put("throttled.csv", customer_csv)
    # WHEN the file is handled
    response = lambda_handler(drops.event(), None)
    # THEN it succeeds after retrying only the failed entries
    assert response == {"batchItemFailures": []}
    assert faults.calls[0]["failed"] > 0
    # AND every valid row is on the stream exactly once, in as many Kinesis records as were accepted,
    # and each shard holds the file's rows in file order
    stream = read_stream(get_settings().stream_name)
    assert len(stream.record_ids) == len(set(stream.record_ids)) == len(expected_rows(customer_csv))
    assert stream.kinesis_records == sum(c["entries"] - c["failed"] for c in faults.calls)
    assert_in_order_per_shard(stream.records)
    manifest = drops.manifest("throttled.csv")
    assert manifest["retried_entries"] == sum(c["failed"] for c in faults.calls)
    assert manifest["put_calls"] == len(faults.calls)


def test_lasting_throttling_fails_only_that_message_and_its_retry_delivers(
    drops: Drops, customer_csv: bytes, put_records_faults
) -> None:
    # GIVEN two files in one batch, and Kinesis refusing every entry of the first file
    drops.put("a.csv", customer_csv)
    drops.put("b.csv", customer_csv.replace(b"\n", b"\r\n"))  # different bytes, so a different source id
    event = drops.event(expected=2, include_test_event=False)
    a_message = next(r["messageId"] for r in event["Records"] if "a.csv" in r["body"])
    a_etag = drops.s3.head_object(Bucket=drops.bucket, Key="data/input/a.csv")["ETag"].strip('"')
    a_id = source_id_for(f"s3://{drops.bucket}/data/input/a.csv", a_etag)

    def refuse_a(_call: int, _position: int, entry: dict[str, Any]) -> str | None:
        return "ProvisionedThroughputExceededException" if entry["PartitionKey"].startswith(a_id) else None

    faults = put_records_faults(refuse_a)
    processor = FileProcessor(settings=get_settings(), s3=client("s3"), kinesis=client("kinesis"), retry=FAST_RETRY)
    # WHEN the batch is handled
    response = handle(event, processor=processor)
    # THEN only the first file's message is reported failed; the second file is done
    assert response == {"batchItemFailures": [{"itemIdentifier": a_message}]}
    assert "data/input/a.csv" in drops.stored_keys()
    assert not drops.manifests_of("a.csv")
    assert drops.manifest("b.csv")["status"] == "processed"
    # WHEN Kinesis recovers and SQS redelivers the failed message
    faults.plan = None
    retry = {"Records": [r for r in event["Records"] if r["messageId"] == a_message]}
    assert handle(retry, processor=processor) == {"batchItemFailures": []}
    # THEN each file's rows are on the stream exactly once
    ids = read_stream(get_settings().stream_name).record_ids
    assert len(ids) == len(set(ids)) == 2 * len(expected_rows(customer_csv))


def test_a_whole_put_records_call_failing_fails_the_message(
    drops: Drops, customer_csv: bytes, put_records_faults
) -> None:
    # GIVEN every PutRecords call refused as a whole (after the client's own retries)
    put_records_faults(whole_call_error="AccessDeniedException")
    drops.put("denied.csv", customer_csv)
    event = drops.event(include_test_event=False)
    # WHEN handled THEN the message is reported failed, the object stays, no manifest is written
    response = lambda_handler(event, None)
    assert response == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}
    assert "data/input/denied.csv" in drops.stored_keys()
    assert not drops.manifests_of("denied.csv")


def test_an_s3_read_failure_fails_the_message_and_keeps_the_object(drops: Drops, customer_csv: bytes) -> None:
    # GIVEN S3 refusing the read of the dropped object
    def deny(**_: object) -> tuple[AWSResponse, dict[str, Any]]:
        return AWSResponse("http://injected", 403, {}, None), {"Error": {"Code": "AccessDenied", "Message": "no"}}

    s3 = client("s3")
    drops.put("unreadable.csv", customer_csv)
    event = drops.event(include_test_event=False)
    s3.meta.events.register("before-call.s3.GetObject", deny)
    try:
        response = lambda_handler(event, None)
    finally:
        s3.meta.events.unregister("before-call.s3.GetObject", deny)
    # THEN the message is retried later and nothing was sent or moved
    assert response == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}
    assert "data/input/unreadable.csv" in drops.stored_keys()
    assert read_stream(get_settings().stream_name).records == []


def test_a_message_that_names_no_object_is_acknowledged_with_one_clear_error_line(
    drops: Drops, caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN a stray message on the queue, next to a real drop
    client("sqs").send_message(QueueUrl=drops.resources.file_drops_queue_url, MessageBody="hello")
    messages = [m for m in drops.messages(expected=0) if m["Body"] == "hello"]
    event = sqs_event(messages, queue_arn=drops.resources.file_drops_queue_arn)
    # WHEN handled THEN it is acknowledged (retrying cannot make it name an object), after one error line
    # that says what was expected and what arrived
    assert lambda_handler(event, None) == {"batchItemFailures": []}
    (line,) = [r for r in caplog.records if r.levelname == "ERROR"]
    logged = json.loads(log.registered_formatter.format(line))
    assert "names no object" in logged["message"]
    assert logged["body"] == "'hello'"
    assert "S3 event notification" in logged["expected"]
    assert logged["arrived"] == "text 'hello'"
    assert line.exc_info is None


def test_bytes_per_customer_record_on_the_stream_stay_under_200(drops: Drops, customer_csv: bytes) -> None:
    # GIVEN a real file processed
    drops.put("sized.csv", customer_csv)
    lambda_handler(drops.event(), None)
    # WHEN the Kinesis records are measured as stored (data + partition key, aggregation included)
    stream = read_stream(get_settings().stream_name)
    per_record = stream.kinesis_bytes / len(stream.records)
    manifest = drops.manifest("sized.csv")
    # THEN a customer record costs at most 200 bytes, and the manifest's figure is the same measurement
    print(f"bytes per customer record: {per_record:.1f} ({stream.kinesis_records} Kinesis records)")
    assert per_record <= 200
    assert manifest["bytes_sent"] == stream.kinesis_bytes


def test_an_unreadable_old_manifest_does_not_block_a_new_drop(drops: Drops, customer_csv: bytes) -> None:
    # GIVEN a manifest left behind in a shape this version cannot read
    drops.s3.put_object(Bucket=drops.bucket, Key="data/manifests/old.csv.json", Body=b'{"format": "ancient"}')
    drops.put("old.csv", customer_csv)
    # WHEN the file is dropped under that name THEN it is processed and the manifest replaced
    assert lambda_handler(drops.event(), None) == {"batchItemFailures": []}
    manifest = drops.manifest("old.csv")
    assert (manifest["status"], manifest["repeat"]) == ("processed", False)


def test_a_key_with_spaces_plus_signs_and_folders_arrives_url_encoded_and_is_processed(
    drops: Drops, customer_csv: bytes
) -> None:
    # GIVEN a drop whose key S3 must URL-encode in the notification
    key = drops.put("2026/11 drops/customers+extra é.csv", customer_csv)
    event = drops.event(include_test_event=False)
    assert key not in event["Records"][0]["body"]
    # WHEN handled
    assert lambda_handler(event, None) == {"batchItemFailures": []}
    # THEN the real object was read, and its outputs keep the decoded name below each prefix
    manifest = drops.manifest("2026/11 drops/customers+extra é.csv")
    assert manifest["source_uri"] == f"s3://{drops.bucket}/{key}"
    assert manifest["records_sent"] == len(expected_rows(customer_csv))
    assert "data/processed/2026/11 drops/customers+extra é.csv" in drops.stored_keys()


def test_the_s3_test_event_alone_is_acknowledged_and_changes_nothing(drops: Drops) -> None:
    # GIVEN only the test event S3 sent when the notification was configured
    event = drops.event(expected=0)
    assert [r["body"] for r in event["Records"] if "s3:TestEvent" in r["body"]] == [r["body"] for r in event["Records"]]
    assert event["Records"]
    # WHEN handled THEN it is acknowledged and nothing is written
    assert lambda_handler(event, None) == {"batchItemFailures": []}
    assert not any(k.startswith("data/manifests/") for k in drops.stored_keys())
    assert read_stream(get_settings().stream_name).records == []
