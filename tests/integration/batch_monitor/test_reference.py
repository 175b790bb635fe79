"""Reference data comes from the model version's training run in the real MLflow store."""

from __future__ import annotations

import pytest

from batch_monitor.evaluation.reference import (
    OPTIONAL_REFERENCE_COLUMNS,
    REFERENCE_COLUMNS,
    ReferenceNotFoundError,
    load_reference,
)
from tests.integration.batch_monitor.conftest import MODEL_NAME

pytestmark = pytest.mark.integration


def test_a_version_s_reference_is_its_training_data_with_model_outputs(registered_model) -> None:  # type: ignore[no-untyped-def]
    # WHEN the registered version's reference is loaded
    reference = load_reference(MODEL_NAME, registered_model.version)
    # THEN it has the features, the label, the model's outputs and which rows were held out of training,
    # and is read once per process
    assert tuple(reference.columns) == (*REFERENCE_COLUMNS, *OPTIONAL_REFERENCE_COLUMNS)
    assert set(reference["split"]) == {"train", "holdout"}
    assert len(reference) > 500
    assert reference["churn_probability"].between(0, 1).all()
    assert load_reference(MODEL_NAME, registered_model.version) is reference


def test_an_unknown_version_is_a_clear_error(registered_model) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ReferenceNotFoundError, match="version 4242"):
        load_reference(MODEL_NAME, "4242")
