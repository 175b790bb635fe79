"""A file that outlives one invocation completes: the producer stops at a line boundary before its deadline,
hands the rest to a fresh invocation through its own queue, and the segments together send every row
exactly once, with rows and lines numbered as in the file. On the emulator, through the real handler."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from churn_common.aws import client
from churn_common.settings import get_settings
from producer.handler import lambda_handler
from tests.integration.producer.conftest import Drops, read_stream

pytestmark = pytest.mark.integration

BAD_ROW = b"8,0,38,0,4370,71,5,17,7,1,1,30,197.64,0"  # age group 7
ROWS_PER_INVOCATION_CHECKS = 3  # the deadline is "near" after this many checks of the clock
SEGMENTED_ROWS = 6_000  # several segments: the producer looks at the clock before each 16 KB slice


class ShortLivedContext:
    """A Lambda context whose invocation is about to end after a few looks at the clock."""

    def __init__(self, *, looks: int) -> None:
        self._looks = looks

    def get_remaining_time_in_millis(self) -> int:
        self._looks -= 1
        return 900_000 if self._looks > 0 else 1_000


def big_file(customer_csv: bytes, *, at_least: int, line_end: bytes = b"\n") -> tuple[bytes, list[int]]:
    """The data rows repeated until there are ``at_least`` rows, a bad row after each copy; the bad rows'
    row numbers."""
    header, *rows = [line for line in customer_csv.decode("utf-8-sig").splitlines() if line.strip()]
    lines, bad_rows = [header.encode()], []
    for _ in range(-(-at_least // (len(rows) + 1))):
        lines.extend(row.encode() for row in rows)
        lines.append(BAD_ROW)
        bad_rows.append(len(lines) - 1)
    return line_end.join(lines) + line_end, bad_rows


def drain(
    drops: Drops, first_event: dict[str, Any], *, looks: int, handler: Callable[..., Any] = lambda_handler
) -> int:
    """Handle the drop's event, then every message the producer puts on its queue; invocations made."""
    assert handler(first_event, ShortLivedContext(looks=looks)) == {"batchItemFailures": []}
    invocations = 1
    while True:
        messages = drops.messages(expected=1, include_test_event=False, rounds=2)
        if not messages:
            return invocations
        event = drops.event_of(messages)
        assert handler(event, ShortLivedContext(looks=looks)) == {"batchItemFailures": []}
        invocations += 1


@pytest.mark.parametrize(
    ("name", "encode", "line_end"),
    [
        pytest.param("big.csv", lambda b: b, b"\n", id="plain"),
        pytest.param("big-crlf.csv", lambda b: b, b"\r\n", id="crlf"),
        pytest.param("big.csv.gz", gzip.compress, b"\n", id="gzip"),
    ],
)
def test_a_file_longer_than_an_invocation_is_sent_in_segments_exactly_once(
    drops: Drops, customer_csv: bytes, name: str, encode: Any, line_end: bytes
) -> None:
    # GIVEN a file of several thousand rows with bad rows spread through it
    data, bad_rows = big_file(customer_csv, at_least=SEGMENTED_ROWS, line_end=line_end)
    n_rows = len(data.strip().splitlines()) - 1
    drops.put(name, encode(data))
    # WHEN each invocation sees its deadline near after a few thousand rows
    invocations = drain(drops, drops.event(include_test_event=False), looks=ROWS_PER_INVOCATION_CHECKS)
    # THEN the file took several invocations and ended with one manifest whose rows add up
    assert invocations >= 2
    manifest = drops.manifest(name)
    assert manifest["status"] == "processed"
    assert manifest["segments"] == invocations
    assert manifest["rows_read"] == n_rows
    assert (manifest["records_sent"], manifest["rows_rejected"]) == (n_rows - len(bad_rows), len(bad_rows))
    # AND every valid row is on the stream exactly once, numbered as in the file
    ids = Counter(read_stream(get_settings().stream_name).record_ids)
    assert set(ids.values()) == {1}
    assert {int(i.rsplit(":", 1)[1]) for i in ids} == set(range(1, n_rows + 1)) - set(bad_rows)
    # AND the rejects of all segments carry the bad rows with their row and line numbers in the file
    rejects = [r for uri in manifest["rejected_uris"] for r in drops.read_lines(uri.split("/", 3)[3])]
    assert [(r["row"], r["line"]) for r in rejects] == [(row, row + 1) for row in bad_rows]
    assert len(manifest["rejected_uris"]) > 1
    # AND the object moved once everything was sent
    assert f"data/processed/{name}" in drops.stored_keys()


def test_a_redelivered_continuation_streams_nothing_twice(drops: Drops, customer_csv: bytes) -> None:
    # GIVEN a file handed on after its first segment
    data, _ = big_file(customer_csv, at_least=SEGMENTED_ROWS // 2)
    drops.put("again.csv", data)
    first = lambda_handler(drops.event(include_test_event=False), ShortLivedContext(looks=ROWS_PER_INVOCATION_CHECKS))
    assert first == {"batchItemFailures": []}
    (continuation,) = drops.messages(expected=1, include_test_event=False)
    assert json.loads(continuation["Body"])["segment"] == 1
    # WHEN the continuation is delivered twice (at-least-once delivery), and then the file finishes
    for _ in range(2):
        lambda_handler(drops.event_of([continuation]), ShortLivedContext(looks=ROWS_PER_INVOCATION_CHECKS))
    drain(drops, drops.event_of([continuation]), looks=10**9)
    # THEN no row went on the stream twice and the manifest counts each row once
    ids = Counter(read_stream(get_settings().stream_name).record_ids)
    assert set(ids.values()) == {1}
    manifest = drops.manifest("again.csv")
    assert manifest["records_sent"] == len(ids) == manifest["rows_read"] - manifest["rows_rejected"]
    assert manifest["rows_read"] == len(data.strip().splitlines()) - 1


def test_an_invocation_with_time_to_spare_streams_the_file_in_one_segment(drops: Drops, customer_csv: bytes) -> None:
    drops.put("small.csv", customer_csv)
    assert drain(drops, drops.event(include_test_event=False), looks=10**9) == 1
    manifest = drops.manifest("small.csv")
    assert manifest["segments"] == 1
    assert manifest["sha256"] is not None
    queue = client("sqs").get_queue_attributes(
        QueueUrl=drops.resources.file_drops_queue_url, AttributeNames=["ApproximateNumberOfMessages"]
    )
    assert queue["Attributes"]["ApproximateNumberOfMessages"] == "0"
