"""Where the outputs of one dropped object version go, derived from its key and the configured prefixes.

Manifests and reject files are kept per ``source_id`` (the object's URI and content) and per object
version, so a later upload under the same key never overwrites or deletes the audit trail of an earlier
one, and every ``source_id`` stored with a prediction maps to its manifests by prefix:
``data/manifests/<source_id>/<version>.json``. The processed or errored copy keeps the file's name.
"""

from __future__ import annotations

from dataclasses import dataclass

from churn_common.settings import Settings

MANIFEST_SUFFIX = ".json"
REJECTED_SUFFIX = ".jsonl"


def manifests_prefix(settings: Settings, source_id: str) -> str:
    """Every manifest of one source (one per uploaded version that had this content) lies under it."""
    return f"{settings.manifest_prefix}{source_id}/"


def manifest_key(settings: Settings, *, source_id: str, version: str) -> str:
    return f"{manifests_prefix(settings, source_id)}{version}{MANIFEST_SUFFIX}"


def rejected_key(settings: Settings, *, source_id: str, version: str, part: int = 0) -> str:
    """Rejected rows of one version; a file streamed in segments has one part per segment after the first."""
    suffix = f".part-{part:05d}{REJECTED_SUFFIX}" if part else REJECTED_SUFFIX
    return f"{settings.rejected_prefix}{source_id}/{version}{suffix}"


@dataclass(frozen=True, slots=True)
class FileLocations:
    """Keys for one input file; ``name`` is its key below the input prefix (sub-folders kept)."""

    name: str
    processed: str
    errored: str

    @classmethod
    def for_input(cls, key: str, settings: Settings) -> FileLocations | None:
        """``None`` for keys outside the input prefix and for folder markers: nothing of ours to process."""
        if not key.startswith(settings.input_prefix) or key.endswith("/"):
            return None
        name = key.removeprefix(settings.input_prefix)
        processed, errored = f"{settings.processed_prefix}{name}", f"{settings.errored_prefix}{name}"
        return cls(name=name, processed=processed, errored=errored)
