"""Rejected rows as JSON lines, spooled to a temporary file so a file full of bad rows costs no memory."""

from __future__ import annotations

import tempfile
from types import TracebackType
from typing import Any

from producer.splitter import RejectedRow

SPOOL_IN_MEMORY_BYTES = 1024 * 1024


class RejectSpool:
    """Collects rejections while a file is split; :meth:`upload` writes them once the file is done."""

    def __init__(self) -> None:
        self._file = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY_BYTES)  # noqa: SIM115 - closed in __exit__
        self.count = 0

    def add(self, rejection: RejectedRow) -> None:
        self._file.write(rejection.model_dump_json().encode())
        self._file.write(b"\n")
        self.count += 1

    def upload(self, s3: Any, *, bucket: str, key: str) -> str | None:
        """The rejects file's URI, or ``None`` with no rejections; one file per object version, never replaced."""
        if not self.count:
            return None
        self._file.seek(0)
        s3.upload_fileobj(self._file, bucket, key, ExtraArgs={"ContentType": "application/x-ndjson"})
        return f"s3://{bucket}/{key}"

    def __enter__(self) -> RejectSpool:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._file.close()
