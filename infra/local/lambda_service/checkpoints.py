"""Where each shard's mapping got to, kept on disk so that a restarted service resumes there."""

from __future__ import annotations

import json
import threading
from pathlib import Path


def checkpoint_key(stream_arn: str, shard_id: str) -> str:
    """Under which key a shard's checkpoint is kept."""
    return f"{stream_arn}/{shard_id}"


class CheckpointStore:
    """Per-shard checkpoints (last fully processed sequence number), persisted atomically as JSON."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._data: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}

    def get(self, key: str) -> str | None:
        with self._lock:
            return self._data.get(key)

    def set(self, key: str, sequence_number: str) -> None:
        with self._lock:
            self._data[key] = sequence_number
            self._path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self._path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self._data, indent=1, sort_keys=True))
            tmp.replace(self._path)
