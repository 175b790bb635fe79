"""The bundled samples must trigger exactly the alerts they exist for, measured as the monitor measures."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from sklearn.model_selection import train_test_split

from churn_common.schema import LABEL_COLUMN
from data.bundled import BUNDLED_SAMPLES, REFERENCE_SAMPLE_PATH, SAMPLES_DIR, read_sample
from data.churn_csv import read_churn_csv
from data.dataset import TRAINING_FILE_NAME
from data.synthetic import generate, strong_drift

NO_DRIFT_MAX_SHARE = 0.3
DRIFT_MIN_SHARE = 0.5
HEALTHY_MIN_F1 = 0.75
ALERT_THRESHOLD = 0.70
HOLDOUT_SHARE = 0.25


def sample(name: str) -> pd.DataFrame:
    return read_sample(name)


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return read_churn_csv(REFERENCE_SAMPLE_PATH)


@pytest.fixture(scope="module")
def reference_model(reference: pd.DataFrame, fit_model: Callable[[pd.DataFrame], object]) -> object:
    return fit_model(reference)


def test_samples_have_their_sizes_and_original_headers() -> None:
    # GIVEN the bundled files THEN each has its row count and the published header style
    for spec in BUNDLED_SAMPLES:
        path = SAMPLES_DIR / spec.file_name
        assert path.read_text().startswith("Call  Failure,Complains,Subscription  Length,"), spec.file_name
        assert len(sample(spec.file_name)) == spec.n_rows, spec.file_name
        if spec.malformed_rows:
            assert path.read_text().splitlines()[-len(spec.malformed_rows) :] == list(spec.malformed_rows)
    assert len(read_churn_csv(REFERENCE_SAMPLE_PATH)) == 3000


def test_reference_like_sample_does_not_drift(
    reference: pd.DataFrame, drift_share: Callable[[pd.DataFrame, pd.DataFrame], float]
) -> None:
    # GIVEN the reference-like sample WHEN compared with the reference THEN few columns drift
    assert drift_share(reference, sample("sample_reference_like.csv")) <= NO_DRIFT_MAX_SHARE


def test_drifted_sample_drifts(
    reference: pd.DataFrame, drift_share: Callable[[pd.DataFrame, pd.DataFrame], float]
) -> None:
    # GIVEN the drifted sample WHEN compared with the reference THEN most columns drift
    assert drift_share(reference, sample("sample_drifted.csv")) > DRIFT_MIN_SHARE


def test_degraded_sample_has_little_feature_drift(
    reference: pd.DataFrame, drift_share: Callable[[pd.DataFrame, pd.DataFrame], float]
) -> None:
    # GIVEN the degraded sample THEN its trouble is the labels, not the features
    assert drift_share(reference, sample("sample_degraded.csv")) <= NO_DRIFT_MAX_SHARE


def test_model_learns_the_reference_well(
    reference: pd.DataFrame,
    fit_model: Callable[[pd.DataFrame], object],
    quality: Callable[[object, pd.DataFrame], dict[str, float]],
) -> None:
    # GIVEN a model trained on three quarters of the reference WHEN scored on the rest THEN F1 is healthy
    train, holdout = train_test_split(
        reference, test_size=HOLDOUT_SHARE, stratify=reference[LABEL_COLUMN], random_state=0
    )
    assert quality(fit_model(train), holdout)["f1"] >= HEALTHY_MIN_F1


def test_model_stays_healthy_on_the_reference_like_sample(
    reference_model: object, quality: Callable[[object, pd.DataFrame], dict[str, float]]
) -> None:
    assert quality(reference_model, sample("sample_reference_like.csv"))["f1"] >= HEALTHY_MIN_F1


def test_every_quality_metric_falls_below_the_alert_threshold_on_the_degraded_sample(
    reference_model: object, quality: Callable[[object, pd.DataFrame], dict[str, float]]
) -> None:
    # GIVEN the model trained on the reference WHEN scored on the degraded sample THEN every metric alerts
    scores = quality(reference_model, sample("sample_degraded.csv"))
    assert all(value < ALERT_THRESHOLD for value in scores.values()), scores


def test_bootstrap_of_real_data_does_not_drift_but_its_strong_drift_does(
    real_data_dir: Path, drift_share: Callable[[pd.DataFrame, pd.DataFrame], float]
) -> None:
    # GIVEN the real training split
    real = read_churn_csv(real_data_dir / TRAINING_FILE_NAME)
    # WHEN resampled as is, and resampled with a strong drift
    like = generate(n_rows=len(real), seed=21, base=real)
    shifted = generate(n_rows=len(real), seed=21, base=real, drift=strong_drift())
    # THEN only the drifted batch trips the dataset-drift threshold
    assert drift_share(real, like) <= NO_DRIFT_MAX_SHARE
    assert drift_share(real, shifted) > DRIFT_MIN_SHARE
