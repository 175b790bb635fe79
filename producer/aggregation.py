"""KPL aggregated records, written directly in their wire format.

An aggregated record is ``MAGIC + AggregatedRecord + MD5(AggregatedRecord)`` where the protobuf message
holds a table of partition keys and one ``Record {partition_key_index, data}`` per user record (see the
KPL's aggregation-format.md). The bytes are exactly those aws-kinesis-agg's ``AggRecord`` makes of the
same user records, and record ids (distinct keys) are split into aggregates at the same records; the
tests hold it to both and decode the result with aws-kinesis-agg's deaggregator and the scorer's unpacker.
(Where a key repeats, ``AggRecord`` counts it again in its size estimate and closes early; this counts
the exact size.)

Why not ``AggRecord`` itself: it adds a protobuf message object per user record and sizes each varint
bit by bit, about 4.2 us per record, most of the producer's time. The message is fixed and small (two
repeated fields, no per-record hash keys), so appending its bytes directly costs about 1.2 us.
"""

from __future__ import annotations

import hashlib

from aws_kinesis_agg import DIGEST_SIZE, MAGIC

from churn_common.errors import PermanentError

FRAME_BYTES = len(MAGIC) + DIGEST_SIZE
PARTITION_KEY_TABLE_TAG = b"\x0a"  # AggregatedRecord.partition_key_table = 1, length-delimited
RECORD_TAG = b"\x1a"  # AggregatedRecord.records = 3, length-delimited
PARTITION_KEY_INDEX_TAG = b"\x08"  # Record.partition_key_index = 1, varint
DATA_TAG = b"\x1a"  # Record.data = 3, length-delimited
VARINT_CACHE_SIZE = 1 << 14  # every one- and two-byte varint: all lengths and key indexes of usual aggregates


def encode_varint(value: int) -> bytes:
    """Protobuf base-128 varint of a non-negative integer."""
    if value < 0:
        raise ValueError("varints here encode sizes and indexes, never negative")
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


_VARINTS: tuple[bytes, ...] = tuple(encode_varint(n) for n in range(VARINT_CACHE_SIZE))


def _varint(value: int) -> bytes:
    return _VARINTS[value] if value < VARINT_CACHE_SIZE else encode_varint(value)


class RecordTooLargeError(PermanentError, ValueError):
    """A user record that does not fit an aggregate even on its own: it never will."""


class Aggregate:
    """One aggregated Kinesis record being filled; its partition key is that of its first user record.

    :meth:`add` refuses a record that would take the framed size past ``max_bytes``; the caller then
    sends this aggregate and starts another.
    """

    __slots__ = ("_first_key", "_key_index", "_keys", "_records", "max_bytes", "size")

    def __init__(self, *, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.size = FRAME_BYTES
        self._first_key = b""
        self._key_index: dict[bytes, int] = {}
        self._keys: list[bytes] = []
        self._records: list[bytes] = []

    def __len__(self) -> int:
        return len(self._records)

    @property
    def partition_key(self) -> str:
        return self._first_key.decode("utf-8")

    def add(self, partition_key: bytes, data: bytes) -> bool:
        """Append one user record; False (and nothing changed) when it does not fit any more."""
        index = self._key_index.get(partition_key)
        if index is None:
            index = len(self._keys)
            key_entry = PARTITION_KEY_TABLE_TAG + _varint(len(partition_key)) + partition_key
        else:
            key_entry = b""
        body = PARTITION_KEY_INDEX_TAG + _varint(index) + DATA_TAG + _varint(len(data)) + data
        record = RECORD_TAG + _varint(len(body)) + body
        added = len(key_entry) + len(record)
        if self.size + added > self.max_bytes:
            if not self._records:
                raise RecordTooLargeError(
                    f"a user record of {len(data)} bytes (key {partition_key[:64]!r}) does not fit "
                    f"an aggregate of {self.max_bytes} bytes"
                )
            return False
        if key_entry:
            self._key_index[partition_key] = index
            self._keys.append(key_entry)
        if not self._records:
            self._first_key = partition_key
        self._records.append(record)
        self.size += added
        return True

    def to_bytes(self) -> bytes:
        message = b"".join(self._keys) + b"".join(self._records)
        return MAGIC + message + hashlib.md5(message, usedforsecurity=False).digest()
