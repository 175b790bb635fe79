"""Which incarnation of a stream a delivery came from, so delivery ids stay unique across re-creations.

Kinesis sequence numbers are unique only within one stream incarnation: a stream re-created under the
same name (destroy/apply, a restore) starts a new sequence space, and a restarted emulator starts again at
small integers. ``shardId:sequenceNumber:subSequenceNumber`` alone would make new records look like old
deliveries. The stream's creation time tells incarnations apart and stays fixed for the life of one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

from churn_common.aws import client

INCARNATION_SEPARATOR = "/"

IncarnationOf = Callable[[str], str]  # a StreamIncarnations, or a fixed one where no stream can be asked


class StreamIncarnations:
    """Creation time (epoch milliseconds) per stream ARN, asked of Kinesis once per ARN and container."""

    def __init__(self, *, kinesis: Any | None = None) -> None:
        self._kinesis = kinesis
        self._known: dict[str, str] = {}
        self._lock = threading.Lock()

    def __call__(self, stream_arn: str) -> str:
        with self._lock:
            known = self._known.get(stream_arn)
        if known is not None:
            return known
        kinesis = self._kinesis or client("kinesis")
        summary = kinesis.describe_stream_summary(StreamARN=stream_arn)["StreamDescriptionSummary"]
        incarnation = str(int(summary["StreamCreationTimestamp"].timestamp() * 1000))
        with self._lock:
            self._known[stream_arn] = incarnation
        return incarnation

    def forget(self, stream_arns: Iterable[str]) -> None:
        """Ask Kinesis again next time: a stored delivery id showed the stream was re-created meanwhile."""
        with self._lock:
            for arn in stream_arns:
                self._known.pop(arn, None)


def qualified(incarnation: str, event_id: str) -> str:
    """``<creation ms>/<shardId>:<sequence>:<sub-sequence>``: one delivery of one stream incarnation."""
    return f"{incarnation}{INCARNATION_SEPARATOR}{event_id}"


def unqualified(delivery_id: str) -> str:
    return delivery_id.rsplit(INCARNATION_SEPARATOR, 1)[-1]
