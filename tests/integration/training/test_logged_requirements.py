"""What a registered version says it needs to load: named pins, written without MLflow's inference, that a
pyfunc load and predict then works with."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from churn_common.registry import configure_mlflow
from churn_common.schema import FEATURE_COLUMNS
from churn_common.settings import get_settings
from training.model import MissingDistributionError, pyfunc_requirements

pytestmark = pytest.mark.integration

# What the pyfunc flavour of an XGBoost classifier imports to load and predict, written out here on its own.
EXPECTED_DISTRIBUTIONS = ("mlflow", "xgboost-cpu", "scikit-learn", "numpy", "pandas", "scipy")


def _requirement_lines(model_dir: Path) -> list[str]:
    return [line for line in (model_dir / "requirements.txt").read_text().splitlines() if line.strip()]


def test_a_registered_version_pins_what_loading_it_needs_once_each(registered_model, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # GIVEN the session's registered version
    configure_mlflow(get_settings())
    name = get_settings().model_name

    # WHEN its logged model is downloaded
    model_dir = Path(
        mlflow.artifacts.download_artifacts(
            artifact_uri=f"models:/{name}/{registered_model.version}", dst_path=str(tmp_path)
        )
    )

    # THEN its requirements are one pin per distribution, each at the version installed here
    lines = _requirement_lines(model_dir)
    assert sorted(lines) == sorted(f"{dist}=={metadata.version(dist)}" for dist in EXPECTED_DISTRIBUTIONS)
    # AND the module xgboost is not asked for twice under two distribution names
    assert not [line for line in lines if line.startswith("xgboost==")]
    # AND the model loads as a pyfunc with them and scores a record
    model = mlflow.pyfunc.load_model(str(model_dir))
    record = pd.DataFrame([dict.fromkeys(FEATURE_COLUMNS, 1.0)], dtype=np.float32)
    scores = np.asarray(model.predict(record))
    assert scores.shape[0] == 1


def test_the_first_installed_name_of_a_group_is_pinned() -> None:
    # GIVEN a group whose first name is not installed and whose second is
    groups = (("no-such-distribution-churn", "numpy"),)

    # WHEN the requirements are named
    pins = pyfunc_requirements(groups)

    # THEN the installed one is pinned at its version
    assert pins == (f"numpy=={metadata.version('numpy')}",)


def test_a_group_with_nothing_installed_is_refused_with_its_names() -> None:
    with pytest.raises(MissingDistributionError, match="no-such-distribution-churn"):
        pyfunc_requirements((("no-such-distribution-churn",),))
