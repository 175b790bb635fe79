"""Real Evidently on generated, bundled and (when present) real data: the drift method separates a
reference-like window from a drifted one at every window size, and quality needs labels."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from batch_monitor.core import EvaluationStatus, Window
from batch_monitor.evaluation.drift import COLUMN_DRIFT_THRESHOLD, evaluate_window
from churn_common.registry import PREDICTION_COLUMN, PROBABILITY_COLUMN, TARGET_COLUMN
from churn_common.schema import FEATURE_COLUMNS, LABEL_COLUMN
from data.bundled import read_sample
from data.churn_csv import read_churn_csv
from data.synthetic import generate, strong_drift
from stream_scorer.model import DECISION_THRESHOLD, LoadedModel
from tests.conftest import REPO_ROOT, real_data_dir

pytestmark = pytest.mark.integration

WINDOW = Window(datetime(2026, 11, 26, 6, 0, tzinfo=UTC), datetime(2026, 11, 26, 6, 5, tzinfo=UTC))
SAMPLES = REPO_ROOT / "data" / "samples"


@pytest.fixture(scope="module")
def score(serving_model: LoadedModel) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """Rows as the monitor reads them: features, the model's probability and decision, the label if any."""

    def scored(frame: pd.DataFrame) -> pd.DataFrame:
        probabilities = serving_model.predict_proba(frame[list(FEATURE_COLUMNS)].to_numpy(dtype=np.float32))
        out = frame.rename(columns={LABEL_COLUMN: TARGET_COLUMN})
        out[PROBABILITY_COLUMN] = probabilities
        out[PREDICTION_COLUMN] = (probabilities >= DECISION_THRESHOLD).astype(int)
        if TARGET_COLUMN not in out:
            out[TARGET_COLUMN] = None
        return out

    return scored


def evaluate(current: pd.DataFrame, reference: pd.DataFrame, **options: object):  # type: ignore[no-untyped-def]
    return evaluate_window(current, reference, window=WINDOW, model_version="1", **options)  # type: ignore[arg-type]


@pytest.mark.parametrize("n_rows", [200, 2000])
def test_reference_like_and_strongly_drifted_windows_are_told_apart_at_any_size(  # type: ignore[no-untyped-def]
    n_rows, base_rows, score
) -> None:
    # GIVEN the reference, a window resampled from it and a strongly drifted window of the same size
    reference = score(base_rows)
    like = score(generate(n_rows=n_rows, seed=n_rows, base=base_rows))
    drifted = score(generate(n_rows=n_rows, seed=n_rows + 1, base=base_rows, drift=strong_drift()))
    # WHEN both are evaluated
    calm, moved = evaluate(like, reference), evaluate(drifted, reference)
    # THEN the reference-like one is far below the dataset-drift share and the drifted one far above it
    assert calm.dataset_drift is False
    assert calm.drift_share <= 1 / 13
    assert moved.dataset_drift is True
    assert moved.drift_share >= 10 / 13
    # AND each column's verdict is its score against the threshold, consistent with Evidently's share
    for evaluation in (calm, moved):
        assert all(c.drifted == (c.score >= COLUMN_DRIFT_THRESHOLD) for c in evaluation.columns)
        assert evaluation.drift_share == pytest.approx(len(evaluation.drifted_columns) / 13)
    assert {c.column for c in moved.drifted_columns} >= set(strong_drift()) - {"status"}
    assert "<html" in moved.html.lower()


def test_column_scores_read_from_the_drift_table_equal_evidentlys_own_value_drift(base_rows, score) -> None:  # type: ignore[no-untyped-def]
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    # GIVEN a drifted window and the reference
    reference = score(base_rows)
    drifted = score(generate(n_rows=500, seed=7, base=base_rows, drift=strong_drift()))
    # WHEN the monitor evaluates it, and plain DataDriftPreset (a ValueDrift per column) runs on the same data
    ours = evaluate(drifted, reference)
    columns = list(FEATURE_COLUMNS)
    definition = DataDefinition(numerical_columns=columns)
    plain = Report(
        [
            DataDriftPreset(
                columns=columns,
                per_column_method=dict.fromkeys(columns, "wasserstein"),
                per_column_threshold=dict.fromkeys(columns, COLUMN_DRIFT_THRESHOLD),
            )
        ]
    ).run(
        reference_data=Dataset.from_pandas(reference[columns].astype(float), data_definition=definition),
        current_data=Dataset.from_pandas(drifted[columns].astype(float), data_definition=definition),
    )
    value_drift = {
        m["config"]["column"]: float(m["value"])
        for m in plain.dict()["metrics"]
        if m["config"]["type"].endswith(":ValueDrift")
    }
    # THEN every column has the same score, and the report still shows the drift table
    assert {c.column: c.score for c in ours.columns} == pytest.approx(value_drift, abs=1e-12)
    assert len(value_drift) == len(FEATURE_COLUMNS)
    assert ours.html is not None
    assert "Data Drift Summary" in ours.html


def test_bundled_samples_reference_like_passes_and_drifted_alerts(score) -> None:  # type: ignore[no-untyped-def]
    # GIVEN the synthetic files shipped with the project
    reference = score(read_churn_csv(SAMPLES / "reference.csv"))
    # WHEN the reference-like and the drifted sample are evaluated against the bundled reference
    like = evaluate(score(read_sample("sample_reference_like.csv")), reference)
    drifted = evaluate(score(read_churn_csv(SAMPLES / "sample_drifted.csv")), reference)
    # THEN (as measured in the drift module's notes) 0 and 11 of 13 columns drift
    assert (like.drift_share, like.dataset_drift) == (0.0, False)
    assert (len(drifted.drifted_columns), drifted.dataset_drift) == (11, True)


@pytest.mark.skipif(real_data_dir() is None, reason="real data files not present (CHURN_TEST_DATA_DIR)")
def test_real_files_show_the_measured_shares(score) -> None:  # type: ignore[no-untyped-def]
    # GIVEN the real training split as reference
    folder = real_data_dir()
    assert folder is not None
    reference = score(read_churn_csv(folder / "customer_churn_0.csv"))
    shares = {
        name: evaluate(score(read_churn_csv(folder / f"customer_churn_{name}.csv")), reference)
        for name in ("1", "2", "synthetic_1", "synthetic_2", "synthetic_3")
    }
    # THEN the shifted splits flag the columns that really moved, without a dataset-level verdict,
    # and the third-party synthetic files are clean
    assert [c.column for c in shares["1"].drifted_columns] == ["call_failure", "charge_amount"]
    assert [c.column for c in shares["2"].drifted_columns] == ["call_failure", "charge_amount", "age_group"]
    assert not shares["1"].dataset_drift
    assert not shares["2"].dataset_drift
    assert all(shares[f"synthetic_{i}"].drift_share == 0 for i in (1, 2, 3))


def test_quality_is_computed_on_the_labelled_rows_of_a_partly_labelled_window(base_rows, score) -> None:  # type: ignore[no-untyped-def]
    # GIVEN 300 rows of which the first 100 carry no label
    current = score(generate(n_rows=300, seed=5, base=base_rows))
    current[TARGET_COLUMN] = current[TARGET_COLUMN].astype("object")
    current.loc[:99, TARGET_COLUMN] = None
    # WHEN evaluated
    evaluation = evaluate(current, score(base_rows))
    # THEN drift uses all 300 rows, quality the 200 labelled ones, and the report holds both parts
    assert (evaluation.n_rows, evaluation.n_labelled) == (300, 200)
    labelled = current.iloc[100:]
    expected_accuracy = float((labelled[TARGET_COLUMN].astype(int) == labelled[PREDICTION_COLUMN]).mean())
    assert evaluation.accuracy == pytest.approx(expected_accuracy)
    assert evaluation.f1 is not None
    assert "Data drift" in evaluation.html
    assert "Classification quality" in evaluation.html


@pytest.mark.parametrize(
    ("labels", "reason"),
    [(lambda n: [0] * n, "a single class"), (lambda n: [None] * (n - 10) + [0] * 5 + [1] * 5, "too few labels")],
)
def test_quality_is_left_out_when_it_cannot_be_judged(base_rows, score, labels, reason) -> None:  # type: ignore[no-untyped-def]
    # GIVEN a window whose labels are all one class, or only 10 labelled rows
    current = score(generate(n_rows=120, seed=6, base=base_rows))
    current[TARGET_COLUMN] = labels(len(current))
    # WHEN evaluated THEN drift is judged but quality is not (nothing to alert on)
    evaluation = evaluate(current, score(base_rows), min_rows=50)
    assert evaluation.status is EvaluationStatus.EVALUATED, reason
    assert evaluation.drift_share is not None
    assert evaluation.quality == {}


def test_windows_below_the_minimum_are_not_tested(base_rows, score) -> None:  # type: ignore[no-untyped-def]
    evaluation = evaluate(score(generate(n_rows=49, seed=7, base=base_rows)), score(base_rows), min_rows=50)
    assert (evaluation.status, evaluation.n_rows, evaluation.drift_share, evaluation.html) == (
        EvaluationStatus.TOO_FEW_ROWS,
        49,
        None,
        None,
    )
