"""Each uploaded object version is processed exactly once, keeps its own audit trail, and every object under
the input prefix ends processed or errored, whatever its name: on the emulator, with versioning on as
the Terraform and the local stack configure it."""

from __future__ import annotations

import gzip
from collections import Counter

import pytest

from churn_common.settings import get_settings
from producer.handler import lambda_handler
from tests.integration.producer.conftest import Drops, expected_rows, read_stream

pytestmark = pytest.mark.integration

BAD_ROW_A = b"8,0,38,0,4370,71,5,17,7,1,1,30,197.64,0"  # age group 7
BAD_ROW_B = b"8,0,38,0,4370,71,5,17,3,1,9,30,197.64,0"  # status 9


def first_rows(data: bytes, n: int, *, bad: bytes) -> bytes:
    """The header, ``n`` data rows and one bad row at the end."""
    lines = data.split(b"\n")
    return b"\n".join([*lines[: n + 1], bad]) + b"\n"


def input_keys(drops: Drops) -> set[str]:
    return {k for k in drops.stored_keys() if k.startswith(get_settings().input_prefix)}


def test_two_uploads_to_one_key_back_to_back_are_both_scored_with_their_own_manifest_and_rejects(
    drops: Drops, customer_csv: bytes
) -> None:
    # GIVEN file A and then file B uploaded to the same key before the producer ran
    file_a = first_rows(customer_csv, 40, bad=BAD_ROW_A)
    file_b = first_rows(customer_csv.replace(b"\n", b"\n", 1), 70, bad=BAD_ROW_B)
    drops.put("x.csv", file_a)
    drops.put("x.csv", file_b)
    # WHEN both notifications are handled (in one event, as the queue may well deliver them)
    response = lambda_handler(drops.event(expected=2, include_test_event=False), None)
    # THEN both versions were read and sent in full: 40 + 70 records, under two sources
    assert response == {"batchItemFailures": []}
    manifests = drops.manifests_of("x.csv")
    assert [(m["status"], m["records_sent"], m["rows_rejected"]) for m in manifests] == [
        ("processed", 40, 1),
        ("processed", 70, 1),
    ] or [(m["status"], m["records_sent"], m["rows_rejected"]) for m in manifests] == [
        ("processed", 70, 1),
        ("processed", 40, 1),
    ]
    sources = Counter(r.split(":")[0] for r in read_stream(get_settings().stream_name).record_ids)
    assert sorted(sources.values()) == [40, 70]
    assert set(sources) == {m["source_id"] for m in manifests}
    # AND each version keeps its own rejects file: A's bad row is not overwritten by B's
    rejected = sorted(drops.rejects(m)[0]["raw"].encode() for m in manifests)
    assert rejected == sorted([BAD_ROW_A, BAD_ROW_B])
    assert len({m["version_id"] for m in manifests}) == 2
    # AND nothing is left under the input prefix
    assert input_keys(drops) == set()


def test_an_upload_that_arrives_while_the_first_is_processed_is_not_deleted_by_the_first_move(
    drops: Drops, customer_csv: bytes
) -> None:
    # GIVEN file A's notification taken from the queue, then file B uploaded to the same key
    drops.put("y.csv", first_rows(customer_csv, 20, bad=BAD_ROW_A))
    event_a = drops.event(include_test_event=False)
    drops.put("y.csv", first_rows(customer_csv, 30, bad=BAD_ROW_B))
    # WHEN A's notification is handled first
    assert lambda_handler(event_a, None) == {"batchItemFailures": []}
    # THEN A was processed and B still waits under the key for its own notification
    (manifest_a,) = drops.manifests_of("y.csv")
    assert manifest_a["records_sent"] == 20
    assert input_keys(drops) == {f"{get_settings().input_prefix}y.csv"}
    # AND B's notification processes B in full
    assert lambda_handler(drops.event(include_test_event=False), None) == {"batchItemFailures": []}
    assert sorted(m["records_sent"] for m in drops.manifests_of("y.csv")) == [20, 30]
    assert input_keys(drops) == set()


def test_a_redelivered_notification_sends_nothing_again(drops: Drops, customer_csv: bytes) -> None:
    # GIVEN a notification handled once
    drops.put("twice.csv", first_rows(customer_csv, 25, bad=BAD_ROW_A))
    event = drops.event(include_test_event=False)
    assert lambda_handler(event, None) == {"batchItemFailures": []}
    sent = len(read_stream(get_settings().stream_name).record_ids)
    # WHEN SQS delivers the same message again (at-least-once delivery)
    assert lambda_handler(event, None) == {"batchItemFailures": []}
    # THEN no record went on the stream twice and there is still one manifest
    assert len(read_stream(get_settings().stream_name).record_ids) == sent == 25
    assert len(drops.manifests_of("twice.csv")) == 1


@pytest.mark.parametrize("name", ["UPPER.CSV", "Mixed.Csv"])
def test_an_upper_case_csv_name_is_processed(drops: Drops, customer_csv: bytes, name: str) -> None:
    drops.put(name, customer_csv)
    assert lambda_handler(drops.event(include_test_event=False), None) == {"batchItemFailures": []}
    manifest = drops.manifest(name)
    assert (manifest["status"], manifest["records_sent"]) == ("processed", len(expected_rows(customer_csv)))
    assert f"data/processed/{name}" in drops.stored_keys()


@pytest.mark.parametrize("name", ["data.csv.gz", "DATA.CSV.GZ", "gzip-named-plainly.csv"])
def test_a_gzip_csv_is_read_streaming(drops: Drops, customer_csv: bytes, name: str) -> None:
    # GIVEN the file gzip-compressed (twice concatenated members, as `cat a.gz b.gz` makes)
    half = len(customer_csv) // 2
    cut = customer_csv.index(b"\n", half) + 1
    drops.put(name, gzip.compress(customer_csv[:cut]) + gzip.compress(customer_csv[cut:]))
    # WHEN handled THEN every row is sent, and the manifest's checksum is of the stored bytes
    assert lambda_handler(drops.event(include_test_event=False), None) == {"batchItemFailures": []}
    manifest = drops.manifest(name)
    assert (manifest["status"], manifest["records_sent"]) == ("processed", len(expected_rows(customer_csv)))
    assert len(read_stream(get_settings().stream_name).record_ids) == len(expected_rows(customer_csv))


def test_a_truncated_gzip_is_errored_with_what_was_sent_counted(drops: Drops, customer_csv: bytes) -> None:
    compressed = gzip.compress(customer_csv * 4)
    drops.put("cut.csv.gz", compressed[: len(compressed) * 3 // 4])
    assert lambda_handler(drops.event(include_test_event=False), None) == {"batchItemFailures": []}
    manifest = drops.manifest("cut.csv.gz")
    assert manifest["status"] == "errored"
    assert "truncated gzip" in manifest["error"]
    sent = len(read_stream(get_settings().stream_name).record_ids)
    assert manifest["records_sent"] == sent
    assert manifest["rows_read"] == manifest["records_sent"] + manifest["rows_rejected"]
    assert "data/errored/cut.csv.gz" in drops.stored_keys()


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("x.xlsx", "unsupported file type ('.xlsx')"),
        ("notes.txt", "unsupported file type ('.txt')"),
        ("README", "unsupported file type (no file extension)"),
    ],
)
def test_a_file_the_producer_does_not_read_is_errored_with_the_reason(drops: Drops, name: str, reason: str) -> None:
    drops.put(name, b"PK\x03\x04 whatever")
    assert lambda_handler(drops.event(include_test_event=False), None) == {"batchItemFailures": []}
    manifest = drops.manifest(name)
    assert manifest["status"] == "errored"
    assert manifest["error"].startswith(reason)
    assert f"data/errored/{name}" in drops.stored_keys()
    assert input_keys(drops) == set()
