"""The shadow-scored challenger judged per window, from real SQLite and Postgres: its agreement with the
serving version, its F1 on the labelled records and its estimated F1, stored with the window's result; and
the serving version's estimate error once labels give its realised F1."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest
import xgboost
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import f1_score
from sqlalchemy import Engine, select

from batch_monitor.evaluation.reference import load_reference
from batch_monitor.evaluation.stored_window import evaluate_stored_window
from batch_monitor.window_data.store import store_evaluation
from churn_common.database import monitoring_metrics, monitoring_windows, predictions
from churn_common.schema import FEATURE_COLUMNS, LABEL_COLUMN
from stream_scorer.model import LoadedModel
from tests.integration.batch_monitor.conftest import FIRST_WINDOW, MODEL_NAME, scored_rows

pytestmark = pytest.mark.integration

CHALLENGER_VERSION = "7"
WINDOW_ROWS = 400


@pytest.fixture(scope="module")
def challenger_booster() -> xgboost.Booster:
    """A shallow model trained on generated customers: sensible, and unlike the serving one on some records."""
    from data.synthetic import generate

    frame = generate(n_rows=2000, seed=91, with_label=True)
    matrix = xgboost.DMatrix(frame.loc[:, list(FEATURE_COLUMNS)].to_numpy(np.float32), label=frame[LABEL_COLUMN])
    return xgboost.train({"objective": "binary:logistic", "max_depth": 1}, matrix, 3)


@pytest.fixture
def put_shadowed(engine: Engine, serving_model: LoadedModel) -> Callable[..., list[dict[str, Any]]]:
    """Stores ``frame`` as window 0's predictions, with the challenger's probabilities when one is given."""

    def put(frame: pd.DataFrame, *, challenger: xgboost.Booster | None) -> list[dict[str, Any]]:
        rows = scored_rows(frame, model=serving_model, window=FIRST_WINDOW)
        if challenger is not None:
            shadow = challenger.predict(xgboost.DMatrix(frame.loc[:, list(FEATURE_COLUMNS)].to_numpy(np.float32)))
            rows = [
                {**row, "challenger_version": CHALLENGER_VERSION, "challenger_probability": float(p)}
                for row, p in zip(rows, shadow, strict=True)
            ]
        with engine.begin() as connection:
            connection.execute(predictions.insert(), rows)
        return rows

    return put


@pytest.fixture
def evaluate_and_store(engine: Engine, registered_model) -> Callable[..., Any]:  # type: ignore[no-untyped-def]
    """Window 0 evaluated from the database and stored, as the monitor flow does; returns its stored row."""
    reference = load_reference(MODEL_NAME, registered_model.version)

    def run(*, challenger_reference: Callable[[str], pd.DataFrame] | None = None) -> Any:
        evaluation = evaluate_stored_window(
            engine,
            window=FIRST_WINDOW,
            model_name=MODEL_NAME,
            model_version=registered_model.version,
            reference=lambda: reference,
            challenger_reference=challenger_reference,
        )
        store_evaluation(engine, evaluation, report_uri=None, evaluated_at=FIRST_WINDOW.end)
        with engine.connect() as connection:
            return connection.execute(select(monitoring_windows)).one()

    return run


def test_window_stores_the_challengers_agreement_and_f1(
    engine, batch, challenger_booster, put_shadowed, evaluate_and_store
) -> None:
    # GIVEN a labelled window scored by the serving version, with a challenger shadow-scoring every record
    rows = put_shadowed(batch(n_rows=WINDOW_ROWS, seed=17), challenger=challenger_booster)
    # WHEN the window is evaluated and stored
    stored = evaluate_and_store()
    # THEN its row names the challenger, the share of records both decided alike, and the challenger's F1
    champion = np.array([r["churn_prediction"] for r in rows])
    shadow = np.array([int(r["challenger_probability"] >= 0.5) for r in rows])
    labels = np.array([r["label"] for r in rows])
    assert (champion != shadow).sum() > 0, "the two models never disagree: the test would prove nothing"
    assert stored.challenger_version == CHALLENGER_VERSION
    assert stored.agreement == pytest.approx((champion == shadow).mean())
    assert stored.challenger_f1 == pytest.approx(f1_score(labels, shadow))
    assert stored.challenger_f1 != pytest.approx(stored.f1)
    # AND both figures are metric rows for the dashboards
    with engine.connect() as connection:
        metrics = dict(
            connection.execute(
                select(monitoring_metrics.c.metric, monitoring_metrics.c.value).where(
                    monitoring_metrics.c.metric.in_(["agreement", "challenger_f1"])
                )
            ).all()
        )
    assert metrics == pytest.approx({"agreement": stored.agreement, "challenger_f1": stored.challenger_f1})


def test_window_without_a_challenger_leaves_its_figures_null(batch, put_shadowed, evaluate_and_store) -> None:
    put_shadowed(batch(n_rows=WINDOW_ROWS, seed=18), challenger=None)
    stored = evaluate_and_store()
    assert stored.f1 is not None
    assert (stored.challenger_version, stored.agreement, stored.challenger_f1) == (None, None, None)


@pytest.fixture(scope="module")
def challenger_reference(challenger_booster: xgboost.Booster) -> pd.DataFrame:
    """What the challenger's training run would have logged: held-out customers with its own probabilities."""
    from data.synthetic import generate

    frame = generate(n_rows=1500, seed=92, with_label=True)
    probabilities = challenger_booster.predict(
        xgboost.DMatrix(frame.loc[:, list(FEATURE_COLUMNS)].to_numpy(np.float32))
    )
    return frame.assign(
        label=frame[LABEL_COLUMN],
        churn_probability=probabilities,
        churn_prediction=(probabilities >= 0.5).astype(int),
        split="holdout",
    )


def expected_estimated_f1(probabilities: np.ndarray, reference: pd.DataFrame) -> float:
    """Confidence-based F1 worked out with scikit-learn: calibrated probabilities as fractional churners."""
    calibrated = (
        IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
        .fit(reference["churn_probability"], reference["label"])
        .predict(probabilities)
    )
    decided = probabilities >= 0.5
    true_pos, false_pos = calibrated[decided].sum(), (1 - calibrated[decided]).sum()
    false_neg = calibrated[~decided].sum()
    return float(2 * true_pos / (2 * true_pos + false_pos + false_neg))


def test_window_stores_the_challengers_estimated_f1_from_its_own_reference(
    batch, challenger_booster, challenger_reference, put_shadowed, evaluate_and_store
) -> None:
    # GIVEN a window shadow-scored by a challenger whose reference is known
    rows = put_shadowed(batch(n_rows=WINDOW_ROWS, seed=19), challenger=challenger_booster)
    asked: list[str] = []

    def reference_of(version: str) -> pd.DataFrame:
        asked.append(version)
        return challenger_reference

    # WHEN the window is evaluated and stored
    stored = evaluate_and_store(challenger_reference=reference_of)
    # THEN the challenger's reference was asked for by its version, and its estimated F1 is the one its
    # calibrated probabilities give, not the serving version's estimate
    shadow = np.array([r["challenger_probability"] for r in rows])
    assert asked == [CHALLENGER_VERSION]
    assert stored.challenger_estimated_f1 == pytest.approx(expected_estimated_f1(shadow, challenger_reference))
    assert stored.challenger_estimated_f1 != pytest.approx(stored.estimated_f1)


def test_a_challenger_reference_that_cannot_load_leaves_only_its_estimate_null(
    batch, challenger_booster, put_shadowed, evaluate_and_store
) -> None:
    # GIVEN a shadow-scored window whose challenger reference cannot be read
    put_shadowed(batch(n_rows=WINDOW_ROWS, seed=20), challenger=challenger_booster)

    def unreadable(version: str) -> pd.DataFrame:
        raise OSError(f"no reference for v{version}")

    # WHEN evaluated THEN the window is stored with every other figure, the challenger's estimate NULL
    stored = evaluate_and_store(challenger_reference=unreadable)
    assert stored.challenger_estimated_f1 is None
    assert stored.challenger_f1 is not None
    assert stored.f1 is not None
    assert stored.estimated_f1 is not None


def test_a_labelled_window_stores_how_far_its_estimate_was_off(batch, put_shadowed, evaluate_and_store) -> None:
    # GIVEN a labelled window scored by the serving version
    put_shadowed(batch(n_rows=WINDOW_ROWS, seed=21), challenger=None)
    # WHEN evaluated and stored THEN the estimate error is the estimated minus the realised F1
    stored = evaluate_and_store()
    assert stored.f1 is not None
    assert stored.estimated_f1 is not None
    assert stored.estimate_error == pytest.approx(stored.estimated_f1 - stored.f1)
