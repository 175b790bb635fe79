"""A file streamed in segments, so a file of any size completes within invocations of bounded length.

The producer reads the object's (decoded) bytes through :class:`AlignedChunks`: slices of at most about
``SLICE_BYTES`` cut at line ends, counted, and stoppable between two slices. The splitter asks for the
next slice only after it has used every line of the previous one, so stopping there ends the split
cleanly at a known byte offset with every row before it sent or rejected. Whether to stop is asked at
every slice boundary, the only moments a stop can take effect. The next invocation resumes at that offset
(a ranged GET for plain CSV; decompressing and skipping for gzip, which cannot be entered in the middle)
with the header line put in front, and numbers its rows on from where the last segment stopped.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator

from producer.splitter import MAX_LINE_BYTES

SLICE_BYTES = 16 * 1024
MAX_CARRY_BYTES = 2 * MAX_LINE_BYTES  # a longer line is handed on uncut: the splitter rejects it anyway
_LINE_END = re.compile(rb"\r\n|\n|\r")


def _never() -> bool:
    return False


def _cut(data: bytes, start: int = 0) -> int:
    """End of the first line ending at or after ``start`` (0 when there is none); a lone CR (old Mac
    files) ends a line too, unless it is the last byte, which may be the first half of a CRLF."""
    newline = data.find(b"\n", start)
    if newline >= 0:
        return newline + 1
    cr = data.find(b"\r", start, len(data) - 1)
    return cr + 1 if cr >= 0 else 0


def _last_cut(data: bytes) -> int:
    """Length of the longest prefix that ends a line (0 when none does)."""
    cut = data.rfind(b"\n") + 1
    if cut == 0:
        cut = data.rfind(b"\r", 0, len(data) - 1) + 1
    return cut


class AlignedChunks:
    """Iterates a byte stream in slices cut at line ends; stops before the next slice once ``should_stop``
    says so (or :meth:`stop` was called)."""

    def __init__(
        self,
        chunks: Iterable[bytes],
        *,
        start_offset: int = 0,
        should_stop: Callable[[], bool] = _never,
        slice_bytes: int = SLICE_BYTES,
    ) -> None:
        self._chunks, self._should_stop, self._slice_bytes = chunks, should_stop, slice_bytes
        self.offset = start_offset  # bytes handed out so far, counted from the start of the stream
        self._stop = False
        self._handed_out = False
        self.stopped_early = False
        self.first_line: bytes | None = None  # the header, for segments that resume after it

    def stop(self) -> None:
        self._stop = True

    def _stopping(self) -> bool:
        """Asked before each slice but the first of a segment, which always goes out (progress is certain)."""
        if self._handed_out and (self._stop or self._should_stop()):
            self._stop = self.stopped_early = True
        return self.stopped_early

    def _slices(self, aligned: bytes) -> Iterator[bytes]:
        start = 0
        while start < len(aligned):
            end = _cut(aligned, start + self._slice_bytes) if start + self._slice_bytes < len(aligned) else 0
            end = end or len(aligned)
            yield aligned[start:end]
            start = end

    def _out(self, piece: bytes) -> bytes:
        self.offset += len(piece)
        self._handed_out = True
        if self.first_line is None:
            self.first_line = _LINE_END.split(piece, maxsplit=1)[0]
        return piece

    def __iter__(self) -> Iterator[bytes]:
        carry = b""
        for chunk in self._chunks:
            data = carry + chunk
            cut = _last_cut(data)
            if cut == 0:
                if len(data) <= MAX_CARRY_BYTES:
                    carry = data
                    continue
                cut = len(data)
            carry = data[cut:]
            for piece in self._slices(data[:cut]):
                if self._stopping():
                    return
                yield self._out(piece)
        if carry and not self._stopping():
            yield self._out(carry)


def skipped(chunks: Iterable[bytes], count: int) -> Iterator[bytes]:
    """The stream without its first ``count`` bytes (resuming inside a stream that has no random access)."""
    remaining = count
    for chunk in chunks:
        if remaining >= len(chunk):
            remaining -= len(chunk)
            continue
        yield chunk[remaining:] if remaining else chunk
        remaining = 0
