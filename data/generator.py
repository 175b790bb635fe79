"""One entry point for synthetic batches: parametric or resampled rows, then drift, then label noise."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from churn_common.schema import FEATURE_COLUMNS, LABEL_COLUMN
from data.bootstrap import resample
from data.constraints import clip_to_schema
from data.drift import apply_drift, check_drift_columns, flip_labels
from data.parametric import churn_labels, sample_features

DEFAULT_SEED = 563


def generate(
    *,
    n_rows: int,
    seed: int = DEFAULT_SEED,
    drift: Mapping[str, float] | None = None,
    label_noise: float = 0.0,
    base: pd.DataFrame | None = None,
    with_label: bool = True,
) -> pd.DataFrame:
    """A batch valid per the schema, in the dataset's column order; the same arguments give the same rows.

    Without ``base`` the rows are parametric and labels are drawn after drifting, so drift changes the
    features but not how churn depends on them. With ``base`` the rows are resampled and keep their labels.
    """
    if n_rows < 1:
        raise ValueError(f"n_rows must be positive, got {n_rows}")
    if not with_label and label_noise:
        raise ValueError("label noise needs labels: drop it or keep the label")
    drift = dict(drift or {})
    check_drift_columns(drift)
    rng = np.random.default_rng(seed)
    if base is None:
        features = apply_drift(sample_features(n_rows=n_rows, rng=rng), drift, rng=rng)
        features = clip_to_schema(features)
        labels = churn_labels(features, rng=rng) if with_label else None
    else:
        if with_label and LABEL_COLUMN not in base.columns:
            raise ValueError(f"base data has no {LABEL_COLUMN!r} column: pass with_label=False")
        rows = resample(base, n_rows=n_rows, rng=rng)
        features = clip_to_schema(apply_drift(rows[list(FEATURE_COLUMNS)], drift, rng=rng))
        labels = rows[LABEL_COLUMN].astype("int64") if with_label else None
    if labels is None:
        return features
    return features.assign(**{LABEL_COLUMN: flip_labels(labels, fraction=label_noise, rng=rng)})
