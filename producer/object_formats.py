"""Which dropped objects the producer reads, and how their bytes become CSV bytes.

Every object under the input prefix ends processed or errored: a name the producer does not read is
errored with the reason, never left in place. Compressed CSV is decompressed while streaming (bounded
output per step, so a small object that inflates to gigabytes never sits in memory). Whether bytes are
gzip is decided by the bytes, not the name (the rules shared with the label files: ``churn_common/csv_objects.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from churn_common import csv_objects
from churn_common.csv_objects import ACCEPTED_SUFFIXES, looks_gzipped
from producer.splitter import FileFormatError

__all__ = ["gunzip", "is_readable_name", "looks_gzipped", "unsupported_reason"]


def is_readable_name(key: str) -> bool:
    """Compared case-insensitively: ``UPPER.CSV`` is a CSV."""
    return csv_objects.is_csv_name(key)


def unsupported_reason(key: str) -> str:
    name = key.rsplit("/", 1)[-1]
    suffix = f"'{name[name.index('.') :]}'" if "." in name else "no file extension"
    return f"unsupported file type ({suffix}): the producer reads {', '.join(ACCEPTED_SUFFIXES)} files"


def gunzip(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Decompressed bytes of a gzip stream; corrupt data is the file's format error (the file is errored)."""
    try:
        yield from csv_objects.gunzip(chunks)
    except csv_objects.CorruptGzipError as exc:
        raise FileFormatError(str(exc)) from None
