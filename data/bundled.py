"""The synthetic CSV files shipped in ``data/samples/``: how each is made, so they can be rebuilt exactly.

They let the pipeline train and demonstrate its alerts with no real data present: a reference set, a
batch like it, a drifted batch (data-drift alert) and a batch with noisy labels (performance alert).
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from data.churn_csv import read_churn_csv, write_churn_csv
from data.drift import strong_drift
from data.generator import generate

SAMPLES_DIR = Path(__file__).resolve().parent / "samples"
REFERENCE_SAMPLE_NAME = "reference.csv"
REFERENCE_SAMPLE_PATH = SAMPLES_DIR / REFERENCE_SAMPLE_NAME
DEGRADED_LABEL_NOISE = 0.4
# Appended to the reference-like sample so the demo shows rejection with reasons next to scoring.
MALFORMED_ROWS: tuple[str, ...] = (
    "3,0,36,0,4065,65,0,15,7,1,1,25,185.85,0",
    "3,0,36,0,4065,sixty,0,15,2,1,1,25,185.85,0",
    "-3,0,36,0,4065,65,0,15,2,1,1,25,185.85,0",
    "3,0,36,0,4065,65,0,15,2,1,1,25",
    "3,0,36,0,,65,0,15,2,1,1,25,185.85,0",
)


@dataclass(frozen=True)
class BundledSample:
    file_name: str
    n_rows: int
    seed: int
    drift: Mapping[str, float] = field(default_factory=dict)
    label_noise: float = 0.0
    malformed_rows: tuple[str, ...] = ()


BUNDLED_SAMPLES: tuple[BundledSample, ...] = (
    BundledSample(REFERENCE_SAMPLE_NAME, n_rows=3000, seed=563),
    BundledSample("sample_reference_like.csv", n_rows=1000, seed=564, malformed_rows=MALFORMED_ROWS),
    BundledSample("sample_drifted.csv", n_rows=1000, seed=565, drift=strong_drift()),
    BundledSample("sample_degraded.csv", n_rows=1000, seed=566, label_noise=DEGRADED_LABEL_NOISE),
)


def write_bundled_samples(directory: Path = SAMPLES_DIR, *, base: pd.DataFrame | None = None) -> list[Path]:
    """(Re)write every bundled sample with the original headers, so readers must normalise them.

    With ``base`` (a model's training data) the demo samples are resampled from it instead, so that
    "reference-like" means like the data the serving model was trained on; the reference file itself
    is then not written.
    """
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for sample in BUNDLED_SAMPLES:
        if base is not None and sample.file_name == REFERENCE_SAMPLE_NAME:
            continue
        rows = generate(
            n_rows=sample.n_rows, seed=sample.seed, drift=sample.drift, label_noise=sample.label_noise, base=base
        )
        path = write_churn_csv(rows, directory / sample.file_name, original_headers=True)
        if sample.malformed_rows:
            with path.open("a", newline="") as handle:
                handle.write("".join(f"{line}\n" for line in sample.malformed_rows))
        written.append(path)
    return written


def read_sample(name: str, directory: Path = SAMPLES_DIR) -> pd.DataFrame:
    """A bundled sample's valid rows: the malformed ones some samples carry on purpose are the producer's."""
    spec = next(s for s in BUNDLED_SAMPLES if s.file_name == name)
    lines = (directory / name).read_text().splitlines(keepends=True)
    return read_churn_csv(io.StringIO("".join(lines[: len(lines) - len(spec.malformed_rows)])))
