"""Large windows: read as a uniform sample of records with exact counts, and judged as all their rows would be.

The sampling itself runs in real SQLite and Postgres on windows of a few thousand rows with a small sample
size; whether a sample of the production size gives the full-data verdicts is shown on windows of 250,000
rows in memory, sampled with the key SQLite computes, against the exact full-data scores.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy.stats import wasserstein_distance
from sqlalchemy import Engine

from batch_monitor.core.quality import counts_of
from batch_monitor.evaluation.drift import COLUMN_DRIFT_THRESHOLD, evaluate_window
from batch_monitor.evaluation.reference import load_reference
from batch_monitor.evaluation.stored_window import evaluate_stored_window
from batch_monitor.window_data.reading import SAMPLE_ROWS, load_window, read_window
from batch_monitor.window_data.sample_keys import key_threshold, sqlite_sample_key
from churn_common.database import predictions
from churn_common.registry import PREDICTION_COLUMN, PROBABILITY_COLUMN, TARGET_COLUMN
from churn_common.schema import FEATURE_COLUMNS, LABEL_COLUMN
from data.churn_csv import read_churn_csv
from data.synthetic import generate, strong_drift
from stream_scorer.model import DECISION_THRESHOLD, LoadedModel
from tests.conftest import real_data_dir
from tests.integration.batch_monitor.conftest import MODEL_NAME, scored_rows, window_at

pytestmark = pytest.mark.integration

LARGE_ROWS = 250_000
# Sampling error at SAMPLE_ROWS of LARGE_ROWS is about 0.003 reference standard deviations; five of them.
SCORE_TOLERANCE = 0.015
SCORED_COLUMNS: tuple[str, ...] = (*FEATURE_COLUMNS, PROBABILITY_COLUMN)


@pytest.fixture
def store(engine: Engine, serving_model: LoadedModel) -> Callable[..., list[dict[str, Any]]]:
    """Insert a generated frame into window 0; ``resent`` of its records are stored a second time."""

    def put(frame: pd.DataFrame, *, resent: int = 0) -> list[dict[str, Any]]:
        window = window_at(0)
        rows = scored_rows(frame, model=serving_model, window=window)
        later = window.end + timedelta(minutes=1)
        copies = [{**row, "event_id": f"{row['event_id']}:again", "scored_at": later} for row in rows[:resent]]
        with engine.begin() as connection:
            connection.execute(predictions.insert(), rows + copies)
        return rows

    return put


def read(engine: Engine, version: str, **options: Any) -> Any:
    return read_window(engine, window=window_at(0), model_name=MODEL_NAME, model_version=version, **options)


def test_a_large_window_is_a_repeatable_sample_of_records_with_exact_counts(  # type: ignore[no-untyped-def]
    engine, batch, store, serving_model
) -> None:
    # GIVEN 3,000 labelled customers (each with its own call time) of which 600 were sent twice: 3,600 rows
    customers = batch(n_rows=3000, seed=60)
    customers["seconds_of_use"] = np.arange(3000) + 10_000
    store(customers, resent=600)
    # WHEN the window is read with room for 1,000 rows
    data = read(engine, serving_model.version, sample_rows=1000)
    # THEN it is sampled, and the counts are those of all 3,000 records, each once
    everything = load_window(engine, window=window_at(0), model_name=MODEL_NAME, model_version=serving_model.version)
    assert data.sampled
    assert data.counts == counts_of(everything)
    assert (data.counts.rows, data.counts.labelled) == (3000, 3000)
    # AND the sample holds about 1000/3600 of the records, each at most once, all of them from the window
    expected = 3000 * 1000 / 3600
    assert abs(len(data.rows) - expected) <= 4 * np.sqrt(expected)
    calls = data.rows["seconds_of_use"]
    assert calls.is_unique
    assert set(calls) <= set(customers["seconds_of_use"])
    # AND another read gives the same rows in the same order
    pd.testing.assert_frame_equal(read(engine, serving_model.version, sample_rows=1000).rows, data.rows)


def test_a_window_within_the_sample_size_is_read_whole(engine, batch, store, serving_model) -> None:  # type: ignore[no-untyped-def]
    store(batch(n_rows=400, seed=61, with_label=False), resent=50)
    data = read(engine, serving_model.version, sample_rows=450)
    everything = load_window(engine, window=window_at(0), model_name=MODEL_NAME, model_version=serving_model.version)
    assert not data.sampled
    pd.testing.assert_frame_equal(data.rows, everything)
    assert (data.counts.rows, data.counts.labelled) == (400, 0)


@pytest.mark.parametrize("drifted", [False, True], ids=["reference-like", "strong drift"])
def test_a_sampled_window_gets_the_verdicts_and_exact_quality_of_all_its_rows(  # type: ignore[no-untyped-def]
    drifted, engine, batch, store, registered_model
) -> None:
    # GIVEN 4,000 labelled rows in a window
    store(batch(n_rows=4000, seed=62, drifted=drifted))
    version = registered_model.version
    reference = load_reference(MODEL_NAME, version)
    # WHEN it is evaluated from the database on a sample of about 1,500 records, and on every row
    sampled = evaluate_stored_window(
        engine,
        window=window_at(0),
        model_name=MODEL_NAME,
        model_version=version,
        reference=lambda: reference,
        sample_rows=1500,
    )
    rows = load_window(engine, window=window_at(0), model_name=MODEL_NAME, model_version=version)
    full = evaluate_window(rows, reference, window=window_at(0), model_version=version)
    # THEN the drift verdicts agree, and counts and quality are exact, not estimated
    assert sampled.n_drift_rows is not None
    assert sampled.n_drift_rows < 2000
    assert [c.drifted for c in sampled.columns] == [c.drifted for c in full.columns]
    assert sampled.dataset_drift is full.dataset_drift is drifted
    assert (sampled.n_rows, sampled.n_labelled) == (full.n_rows, full.n_labelled) == (4000, 4000)
    assert sampled.quality == pytest.approx(full.quality, abs=1e-12)
    # AND the report says what it rests on
    assert f"a uniform sample of {sampled.n_drift_rows:,} of all 4,000 records in the window" in sampled.html
    assert "classification quality" in sampled.html.lower()
    # AND both runs are sections of one page, which carries Evidently's script once
    script = max(re.findall(r"<script>(.*?)</script>", full.html, re.DOTALL), key=len)
    assert len(script) > 100_000
    assert sampled.html.count(script[:20_000]) == 1
    assert "<iframe" not in sampled.html


# --- production sample size against full-data verdicts ---------------------------------------------------


def exact_scores(current: pd.DataFrame, reference: pd.DataFrame) -> dict[str, float]:
    """Evidently's normed Wasserstein distance (its stattest's formula) on every row."""
    return {
        column: wasserstein_distance(reference[column], current[column]) / max(float(np.std(reference[column])), 0.001)
        for column in SCORED_COLUMNS
    }


@pytest.fixture(scope="module")
def score(serving_model: LoadedModel) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def scored(frame: pd.DataFrame) -> pd.DataFrame:
        probabilities = serving_model.predict_proba(frame[list(FEATURE_COLUMNS)].to_numpy(dtype=np.float32))
        out = frame.rename(columns={LABEL_COLUMN: TARGET_COLUMN})
        out[PROBABILITY_COLUMN] = probabilities.astype("float64")
        out[PREDICTION_COLUMN] = (probabilities >= DECISION_THRESHOLD).astype("int64")
        return out

    return scored


def test_evidently_scores_are_the_exact_formula(base_rows, score) -> None:  # type: ignore[no-untyped-def]
    # GIVEN a drifted window of 2,000 rows WHEN Evidently scores it on every row
    reference = score(base_rows)
    current = score(generate(n_rows=2000, seed=63, base=base_rows, drift=strong_drift(strength=0.5)))
    evaluation = evaluate_window(current, reference, window=window_at(0), model_version="1")
    # THEN each score is the normed Wasserstein distance computed directly (the full-data yardstick below)
    computed = {c.column: c.score for c in (*evaluation.columns, evaluation.prediction_drift)}
    assert computed == pytest.approx(exact_scores(current, reference), rel=1e-9)


def _tiled(name: str) -> pd.DataFrame:
    folder = real_data_dir()
    if folder is None:
        pytest.skip("real data files not present (CHURN_TEST_DATA_DIR)")
    frame = read_churn_csv(folder / f"customer_churn_{name}.csv")
    return pd.concat([frame] * -(-LARGE_ROWS // len(frame)), ignore_index=True)


SCENARIOS: dict[str, Callable[[pd.DataFrame], pd.DataFrame]] = {
    "reference-like": lambda base: generate(n_rows=LARGE_ROWS, seed=70, base=base),
    "strong drift": lambda base: generate(n_rows=LARGE_ROWS, seed=71, base=base, drift=strong_drift()),
    "half-strength drift": lambda base: generate(
        n_rows=LARGE_ROWS, seed=72, base=base, drift=strong_drift(strength=0.5)
    ),
    "customer_churn_1": lambda _base: _tiled("1"),
    "customer_churn_2": lambda _base: _tiled("2"),
}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_the_production_sample_gives_the_full_data_verdicts(scenario, base_rows, score) -> None:  # type: ignore[no-untyped-def]
    # GIVEN a window of 250,000 rows and the records SQLite would keep for a sample of SAMPLE_ROWS
    reference = score(base_rows)
    full = score(SCENARIOS[scenario](base_rows))
    keys = np.array([sqlite_sample_key(f"{scenario}:{i}") for i in range(len(full))])
    sample = full[keys < key_threshold(SAMPLE_ROWS / len(full))].reset_index(drop=True)
    # WHEN the sample is evaluated with the window's exact counts
    evaluation = evaluate_window(sample, reference, window=window_at(0), model_version="1", counts=counts_of(full))
    # THEN every column's verdict, the prediction drift and the dataset verdict are those of the full data
    truth = exact_scores(full, reference)
    ours = {c.column: c for c in (*evaluation.columns, evaluation.prediction_drift)}
    assert {c: ours[c].drifted for c in truth} == {c: s >= COLUMN_DRIFT_THRESHOLD for c, s in truth.items()}
    drifted_share = sum(truth[c] >= COLUMN_DRIFT_THRESHOLD for c in FEATURE_COLUMNS) / len(FEATURE_COLUMNS)
    assert evaluation.dataset_drift is bool(drifted_share > 0.5)
    # AND the scores are within the sampling tolerance, and quality is that of every row
    assert {c: ours[c].score for c in truth} == pytest.approx(truth, abs=SCORE_TOLERANCE)
    assert evaluation.n_rows == len(full)
    assert evaluation.quality == pytest.approx(counts_of(full).quality())
    # AND the scenarios are the ones meant (none, most or some columns moved)
    expected = {
        "reference-like": lambda drifted: drifted == [],
        "strong drift": lambda drifted: len(drifted) >= 10,
        "half-strength drift": lambda drifted: len(drifted) >= 7,
        "customer_churn_1": lambda drifted: drifted == ["call_failure", "charge_amount"],
        "customer_churn_2": lambda drifted: drifted == ["call_failure", "charge_amount", "age_group"],
    }
    assert expected[scenario]([c.column for c in evaluation.drifted_columns])
