"""The bounded parameter search of ``make model-registry`` with real Optuna and a real MLflow store: each
trial is a nested run under the version's run, scored by cross-validation on the training rows, the
registered version is fitted with the best trial's parameters, no trials means the fixed parameters, and the
time limit stops the search."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient
from mlflow.entities import Run
from sklearn.metrics import f1_score
from sklearn.model_selection import StratifiedKFold
from xgboost import XGBClassifier

from churn_common.registry import EXPERIMENT_NAME, configure_mlflow
from churn_common.schema import FEATURE_COLUMNS, LABEL_COLUMN
from churn_common.settings import Settings, get_settings
from data.churn_csv import read_churn_csv, write_churn_csv
from data.generator import generate
from training.evaluate import DEFAULT_DECISION_THRESHOLD
from training.model import RANDOM_SEED, XGB_PARAMS, split_holdout
from training.train import TrainingResult, train_and_register
from training.tuning import (
    BEST_TRIAL_RUN_TAG,
    CV_FOLDS,
    SEARCH_SPACE,
    TRIAL_RUN_TAG,
    XGBOOST_DEFAULTS,
    fixed_point,
    search_parameters,
)

pytestmark = pytest.mark.integration

ROWS = 400
SEARCH_TRIALS = 3
MODEL_PARAMS = sorted({*XGB_PARAMS, *SEARCH_SPACE})


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """An MLflow store of this module's own (the session's registry keeps its versions and alias)."""
    shared_uri = get_settings().resolved_mlflow_uri
    state = tmp_path_factory.mktemp("search-state")
    settings = Settings(local_state_dir=state, mlflow_tracking_uri=f"sqlite:///{state / 'mlflow' / 'mlflow.db'}")
    configure_mlflow(settings)
    yield settings
    mlflow.set_tracking_uri(shared_uri)  # MLflow's process-wide URI, for tests that do not configure it
    mlflow.set_registry_uri(shared_uri)


@pytest.fixture(scope="module")
def training_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Synthetic customers, small enough that a trial takes a fraction of a second."""
    path = tmp_path_factory.mktemp("search-data") / "customers.csv"
    write_churn_csv(generate(n_rows=ROWS, seed=21), path, original_headers=True)
    return path


@pytest.fixture(scope="module")
def train_with(registry: Settings, training_csv: Path) -> Callable[..., TrainingResult]:
    """``make model-registry`` on the synthetic customers with a search budget."""

    def train(*, trials: int, timeout_seconds: float = 120.0) -> TrainingResult:
        settings = registry.model_copy(update={"tuning_trials": trials, "tuning_timeout_seconds": timeout_seconds})
        return train_and_register(settings=settings, data_path=training_csv)

    return train


@pytest.fixture(scope="module")
def searched(train_with: Callable[..., TrainingResult]) -> TrainingResult:
    """A version registered after a search of three trials."""
    return train_with(trials=SEARCH_TRIALS)


def trial_runs(parent: str) -> list[Run]:
    """The nested runs under ``parent``, in trial order."""
    experiment = MlflowClient().get_experiment_by_name(EXPERIMENT_NAME)
    assert experiment is not None
    runs = MlflowClient().search_runs([experiment.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent}'")
    return sorted(runs, key=lambda run: int(run.data.tags[TRIAL_RUN_TAG]))


def registered_run(result: TrainingResult, settings: Settings) -> Run:
    version = MlflowClient().get_model_version(settings.model_name, result.version)
    return MlflowClient().get_run(version.run_id)


def model_params_of(run: Run) -> dict[str, str]:
    return {name: run.data.params[name] for name in MODEL_PARAMS}


def fold_f1s(run: Run) -> list[float]:
    return [run.data.metrics[f"cv_f1_fold_{index}"] for index in range(CV_FOLDS)]


def fixed_parameters_fold_f1s(training_csv: Path) -> list[float]:
    """The F1 of each fold for the fixed parameters, computed here with scikit-learn and XGBoost directly:
    stratified, shuffled folds of the train part (the holdout left out), each fold's model at the serving
    threshold."""
    train, _ = split_holdout(read_churn_csv(training_csv))
    features = train[list(FEATURE_COLUMNS)].astype("float32")
    labels = train[LABEL_COLUMN]
    folds = StratifiedKFold(n_splits=3, shuffle=True, random_state=RANDOM_SEED).split(features, labels)
    scores = []
    for fit_rows, validation_rows in folds:
        model = XGBClassifier(**XGB_PARAMS, **XGBOOST_DEFAULTS)
        model.fit(features.iloc[fit_rows], labels.iloc[fit_rows])
        probabilities = model.predict_proba(features.iloc[validation_rows])[:, 1]
        scores.append(f1_score(labels.iloc[validation_rows], probabilities >= DEFAULT_DECISION_THRESHOLD))
    return scores


def test_each_trial_is_a_nested_run_and_the_best_trial_is_registered(
    searched: TrainingResult, registry: Settings
) -> None:
    # GIVEN a search budget of three trials WHEN the model is trained and registered
    result = searched

    # THEN the version's run holds three nested runs, one per trial, each with its parameters and its
    # cross-validation scores: the F1 of each of the three folds, and the means
    trials = trial_runs(result.run_id)
    assert [run.data.tags[TRIAL_RUN_TAG] for run in trials] == ["0", "1", "2"]
    for run in trials:
        assert set(MODEL_PARAMS) <= set(run.data.params)
        assert "cv_f1_fold_3" not in run.data.metrics
        assert all(0.0 <= f1 <= 1.0 for f1 in fold_f1s(run))
        assert run.data.metrics["cv_f1"] == pytest.approx(np.mean(fold_f1s(run)))
        assert {"cv_precision", "cv_recall"} <= set(run.data.metrics)
    # AND the first trial is the fixed parameters, the others are drawn
    assert model_params_of(trials[0]) == {name: str(value) for name, value in {**XGB_PARAMS, **fixed_point()}.items()}
    assert len({tuple(model_params_of(run).items()) for run in trials}) == 3
    # AND the version's run names the best trial, records the budget and how many trials completed
    parent = registered_run(result, registry)
    assert parent.info.run_id == result.run_id
    best = MlflowClient().get_run(parent.data.tags[BEST_TRIAL_RUN_TAG])
    assert best.data.metrics["cv_f1"] == max(run.data.metrics["cv_f1"] for run in trials)
    assert parent.data.metrics["tuning_best_cv_f1"] == best.data.metrics["cv_f1"]
    assert (parent.data.params["tuning_trials"], parent.data.metrics["tuning_trials_completed"]) == ("3", 3)
    assert (result.trials_completed, result.best_cv_f1) == (3, best.data.metrics["cv_f1"])
    # AND the registered version was fitted with the best trial's parameters
    assert model_params_of(parent) == model_params_of(best)
    assert parent.data.metrics["holdout_f1"] == result.metrics["f1"]


def test_a_trial_is_scored_on_stratified_folds_of_the_training_rows(
    searched: TrainingResult, training_csv: Path
) -> None:
    # GIVEN the search's first trial, the fixed parameters
    fixed_trial = trial_runs(searched.run_id)[0]

    # THEN its fold scores are those of the fixed parameters on three stratified folds of the train part
    assert fold_f1s(fixed_trial) == pytest.approx(fixed_parameters_fold_f1s(training_csv))


def test_no_trials_registers_the_fixed_parameters(
    train_with: Callable[..., TrainingResult], registry: Settings
) -> None:
    # GIVEN no search (TUNING_TRIALS=0)
    # WHEN the model is trained and registered
    result = train_with(trials=0)

    # THEN no trial ran, and the version was fitted with the fixed parameters
    assert trial_runs(result.run_id) == []
    run = registered_run(result, registry)
    assert {name: run.data.params[name] for name in XGB_PARAMS} == {k: str(v) for k, v in XGB_PARAMS.items()}
    # AND the parameters only a search sets are not logged at all
    assert (set(SEARCH_SPACE) - set(XGB_PARAMS)) & set(run.data.params) == set()
    assert run.data.metrics["tuning_trials_completed"] == 0
    assert (result.trials_completed, result.best_cv_f1) == (0, None)
    assert BEST_TRIAL_RUN_TAG not in run.data.tags
    assert "tuning_best_cv_f1" not in run.data.metrics


def test_the_time_limit_stops_the_search_and_a_version_is_still_registered(
    train_with: Callable[..., TrainingResult], registry: Settings
) -> None:
    # GIVEN a budget of fifty trials but half a second, time for a few trials at most
    # WHEN the model is trained and registered
    result = train_with(trials=50, timeout_seconds=0.5)

    # THEN the search stopped when the trial under way after the limit finished
    trials = trial_runs(result.run_id)
    assert 1 <= result.trials_completed == len(trials) < 50
    # AND a version was registered, fitted with the best parameters found in that time
    run = registered_run(result, registry)
    assert run.data.metrics["tuning_trials_completed"] == len(trials)
    best = MlflowClient().get_run(run.data.tags[BEST_TRIAL_RUN_TAG])
    assert model_params_of(run) == model_params_of(best)


def test_the_same_rows_and_budget_give_the_same_trials(
    searched: TrainingResult, registry: Settings, training_csv: Path
) -> None:
    # GIVEN the training rows of the version registered after a search
    train, _ = split_holdout(read_churn_csv(training_csv))
    experiment = MlflowClient().get_experiment_by_name(EXPERIMENT_NAME)
    assert experiment is not None

    # WHEN the same search runs again on them
    with mlflow.start_run(experiment_id=experiment.experiment_id) as parent:
        again = search_parameters(
            train, trials=SEARCH_TRIALS, timeout_seconds=120.0, experiment_id=experiment.experiment_id
        )

    # THEN it drew the same parameters, scored them the same, and chose the same ones
    def trials_of(run_id: str) -> list[tuple[dict[str, str], float]]:
        return [(model_params_of(run), fold_f1s(run)) for run in trial_runs(run_id)]

    assert trials_of(parent.info.run_id) == trials_of(searched.run_id)
    assert (again.trials_completed, again.best_cv_f1) == (SEARCH_TRIALS, searched.best_cv_f1)
    assert {name: str(value) for name, value in again.params.items()} == model_params_of(
        registered_run(searched, registry)
    )
