"""Which label objects are read, and how their bytes become text.

The rules are the producer's (``churn_common/csv_objects.py``): names compared case-insensitively
(``LABELS.CSV.GZ`` is a gzip CSV), gzip decided by the bytes. Label files are small next to input drops (one
short row per customer), so they are read whole, up to a bound on the decompressed size: a small object
that inflates to gigabytes must not take the monitor's memory.
"""

from __future__ import annotations

from churn_common.csv_objects import CorruptGzipError, gunzip, is_csv_name, looks_gzipped
from churn_common.errors import PermanentError

MAX_LABEL_FILE_BYTES = 256 * 1024 * 1024


class LabelFileError(PermanentError, ValueError):
    """The object as a whole cannot be read as a label file (corrupt gzip, too large)."""


def is_label_file_name(key: str) -> bool:
    """Compared case-insensitively: ``UPPER.CSV`` and ``upper.CSV.GZ`` are label files."""
    return is_csv_name(key)


def csv_text(data: bytes, *, max_bytes: int = MAX_LABEL_FILE_BYTES) -> str:
    """The object's CSV text: gunzipped when the bytes are gzip (members concatenated, as ``gzip -d`` does),
    a UTF-8 byte order mark dropped, undecodable bytes replaced (the rows holding them are rejected by the
    contract, the others kept)."""
    if looks_gzipped(data):
        parts, size = [], 0
        try:
            for part in gunzip([data]):
                size += len(part)
                if size > max_bytes:
                    raise LabelFileError(f"larger than {max_bytes:,} bytes once decompressed")
                parts.append(part)
        except CorruptGzipError as exc:
            raise LabelFileError(str(exc)) from None
        data = b"".join(parts)
    if len(data) > max_bytes:
        raise LabelFileError(f"larger than {max_bytes:,} bytes")
    return data.decode("utf-8-sig", errors="replace")
