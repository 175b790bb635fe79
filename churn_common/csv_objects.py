"""Which objects are CSV files, and their gzip: the rules the producer's input drops and the monitor's label
files share.

Names are compared case-insensitively (``UPPER.CSV.GZ`` is a gzip CSV). Whether bytes are gzip is decided by
the bytes, not the name: the name is the uploader's word and the bytes are the fact. Decompression streams with
bounded output per step, so a small object that inflates to gigabytes never sits in memory unless its reader
keeps it all.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Iterator

from churn_common.errors import PermanentError

ACCEPTED_SUFFIXES: tuple[str, ...] = (".csv", ".csv.gz")
GZIP_MAGIC = b"\x1f\x8b"
INFLATE_STEP_BYTES = 256 * 1024
# wbits for zlib: 16 + MAX_WBITS reads the gzip container.
_GZIP_WBITS = 16 + zlib.MAX_WBITS


class CorruptGzipError(PermanentError, ValueError):
    """The bytes start as gzip but do not decompress: a retry reads the same bytes."""


def is_csv_name(key: str) -> bool:
    """Compared case-insensitively: ``UPPER.CSV`` is a CSV."""
    return key.lower().endswith(ACCEPTED_SUFFIXES)


def looks_gzipped(first_bytes: bytes) -> bool:
    return first_bytes.startswith(GZIP_MAGIC)


def gunzip(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Decompressed bytes of a gzip stream, members concatenated as ``gzip -d`` does."""
    inflater = zlib.decompressobj(_GZIP_WBITS)
    member_open = False
    for chunk in chunks:
        data = chunk
        while data:
            member_open = True
            try:
                out = inflater.decompress(data, INFLATE_STEP_BYTES)
            except zlib.error as exc:
                raise CorruptGzipError(f"corrupt gzip data: {exc}") from None
            if out:
                yield out
            if inflater.eof:
                data, member_open = inflater.unused_data, False
                inflater = zlib.decompressobj(_GZIP_WBITS)
            else:
                data = inflater.unconsumed_tail
    if member_open and (tail := inflater.flush()):
        yield tail
    if member_open and not inflater.eof:
        raise CorruptGzipError("truncated gzip data: the object ends inside a compressed member")
