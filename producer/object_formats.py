"""Which dropped objects the producer reads, and how their bytes become CSV bytes.

Every object under the input prefix ends processed or errored: a name the producer does not read is
errored with the reason, never left in place. Compressed CSV is decompressed while streaming (bounded
output per step, so a small object that inflates to gigabytes never sits in memory). Whether bytes are
gzip is decided by the bytes, not the name: the name is the uploader's word and the bytes are the fact.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Iterator

from producer.splitter import FileFormatError

ACCEPTED_SUFFIXES: tuple[str, ...] = (".csv", ".csv.gz")
GZIP_MAGIC = b"\x1f\x8b"
INFLATE_STEP_BYTES = 256 * 1024
# wbits for zlib: 16 + MAX_WBITS reads the gzip container.
_GZIP_WBITS = 16 + zlib.MAX_WBITS


def is_readable_name(key: str) -> bool:
    """Compared case-insensitively: ``UPPER.CSV`` is a CSV."""
    return key.lower().endswith(ACCEPTED_SUFFIXES)


def unsupported_reason(key: str) -> str:
    name = key.rsplit("/", 1)[-1]
    suffix = f"'{name[name.index('.') :]}'" if "." in name else "no file extension"
    return f"unsupported file type ({suffix}): the producer reads {', '.join(ACCEPTED_SUFFIXES)} files"


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
                raise FileFormatError(f"corrupt gzip data: {exc}") from None
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
        raise FileFormatError("truncated gzip data: the object ends inside a compressed member")
