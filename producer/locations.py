"""Where the outputs of one dropped file go, derived from its key and the configured prefixes."""

from __future__ import annotations

from dataclasses import dataclass

from churn_common.settings import Settings

MANIFEST_SUFFIX = ".json"
REJECTED_SUFFIX = ".jsonl"


@dataclass(frozen=True, slots=True)
class FileLocations:
    """Keys for one input file; ``name`` is its key below the input prefix (sub-folders kept)."""

    name: str
    manifest: str
    rejected: str
    processed: str
    errored: str

    @classmethod
    def for_input(cls, key: str, settings: Settings) -> FileLocations | None:
        """``None`` for keys outside the input prefix: moving those would re-trigger nothing but is not ours."""
        if not key.startswith(settings.input_prefix) or key == settings.input_prefix:
            return None
        name = key.removeprefix(settings.input_prefix)
        return cls(
            name=name,
            manifest=f"{settings.manifest_prefix}{name}{MANIFEST_SUFFIX}",
            rejected=f"{settings.rejected_prefix}{name}{REJECTED_SUFFIX}",
            processed=f"{settings.processed_prefix}{name}",
            errored=f"{settings.errored_prefix}{name}",
        )
