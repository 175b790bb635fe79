"""One entry point for synthetic batches: parametric or resampled rows, then drift, then label noise.

Asked for customer ids, each row is a customer of its own, named by its seed and row (``C000563-00000001``): the
same arguments name the same customers, so labels can be written for a batch by customer id without reading it
back. Without (the default) a batch has the published dataset's columns only.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from churn_common.schema import CUSTOMER_ID_COLUMN, FEATURE_COLUMNS, LABEL_COLUMN
from data.bootstrap import resample
from data.constraints import clip_to_schema
from data.drift import apply_drift, check_drift_columns, flip_labels
from data.parametric import churn_labels, sample_features

DEFAULT_SEED = 563
CUSTOMER_ID_PREFIX = "C"
SEED_DIGITS = 6
ROW_DIGITS = 8


def customer_ids(*, seed: int, n_rows: int) -> list[str]:
    """The ids of a batch's rows, from 1; stable for a seed, distinct across seeds."""
    return [f"{CUSTOMER_ID_PREFIX}{seed:0{SEED_DIGITS}d}-{row:0{ROW_DIGITS}d}" for row in range(1, n_rows + 1)]


def generate(
    *,
    n_rows: int,
    seed: int = DEFAULT_SEED,
    drift: Mapping[str, float] | None = None,
    label_noise: float = 0.0,
    base: pd.DataFrame | None = None,
    with_label: bool = True,
    with_customer_id: bool = False,
) -> pd.DataFrame:
    """A batch valid per the schema, in the dataset's column order; the same arguments give the same rows.

    Without ``base`` the rows are parametric and labels are drawn after drifting, so drift changes the
    features but not how churn depends on them. With ``base`` the rows are resampled and keep their labels.
    ``with_customer_id`` puts the rows' ids first (see :func:`customer_ids`); the published dataset has none.
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
    batch = features
    if labels is not None:
        batch = features.assign(**{LABEL_COLUMN: flip_labels(labels, fraction=label_noise, rng=rng)})
    if with_customer_id:
        batch.insert(0, CUSTOMER_ID_COLUMN, customer_ids(seed=seed, n_rows=n_rows))
    return batch
