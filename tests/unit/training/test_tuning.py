"""The parameter search's space, the parameters it hands to training and how a trial is scored: the fixed
parameters are a point of the space, a search changes only what it searches, and its trials are scored by
stratified cross-validation on the training rows, never the holdout."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import optuna
import pandas as pd
import pytest
from sklearn.metrics import f1_score, precision_score, recall_score
from xgboost import XGBClassifier

import training.tuning
from churn_common.schema import FEATURE_COLUMNS, LABEL_COLUMN
from data.generator import generate
from training.evaluate import DEFAULT_DECISION_THRESHOLD
from training.model import XGB_PARAMS, ModelParams, split_holdout
from training.tuning import (
    CV_FOLDS,
    SEARCH_SPACE,
    XGBOOST_DEFAULTS,
    CrossValidation,
    ParameterRange,
    cross_validate,
    cv_folds,
    fixed_point,
    model_params,
    suggest_params,
)

NOT_SEARCHED = ("objective", "eval_metric", "n_jobs", "random_state")


@pytest.fixture
def churn_frame() -> Callable[..., pd.DataFrame]:
    def make(n_rows: int = 400, *, seed: int = 5) -> pd.DataFrame:
        return generate(n_rows=n_rows, seed=seed)

    return make


@pytest.fixture
def sampled_trial() -> Callable[[int], optuna.Trial]:
    """A trial of a real study, as the search's objective receives it."""

    def make(seed: int) -> optuna.Trial:
        study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=seed))
        return study.ask()

    return make


def test_the_fixed_parameters_are_a_point_of_the_search_space() -> None:
    # GIVEN the fixed parameters as a point of the space
    point = fixed_point()

    # THEN every searched parameter has its fixed value (XGBoost's default where the fixed ones leave it unset)
    assert set(point) == set(SEARCH_SPACE)
    assert point == {name: XGB_PARAMS.get(name, XGBOOST_DEFAULTS.get(name)) for name in SEARCH_SPACE}
    # AND it lies inside the space, so the search can start from it
    assert all(SEARCH_SPACE[name].contains(value) for name, value in point.items())
    # AND the model parameters it stands for are the fixed ones with those defaults spelled out
    assert model_params(point) == {**XGB_PARAMS, **XGBOOST_DEFAULTS}


def test_searched_parameters_replace_only_their_own_fixed_values() -> None:
    # GIVEN searched values for two parameters
    searched = {"max_depth": 7, "learning_rate": 0.02}

    # WHEN turned into model parameters
    params = model_params(searched)

    # THEN those two change, and what a search must not touch keeps its fixed value
    assert params["max_depth"] == 7
    assert params["learning_rate"] == 0.02
    assert {name: params[name] for name in NOT_SEARCHED} == {name: XGB_PARAMS[name] for name in NOT_SEARCHED}
    assert params["n_estimators"] == XGB_PARAMS["n_estimators"]


@pytest.mark.parametrize(
    ("searched", "message"),
    [
        ({"random_state": 1}, "not in the search space"),
        ({"objective": 0.5}, "not in the search space"),
        ({"max_depth": 50}, "outside the search space"),
        ({"max_depth": 4.5}, "outside the search space"),
        ({"learning_rate": 0.0}, "outside the search space"),
    ],
)
def test_parameters_outside_the_space_are_refused(searched: dict[str, float], message: str) -> None:
    # GIVEN a parameter the search does not own, or a value outside its range
    # WHEN turned into model parameters THEN it is refused, naming the problem
    with pytest.raises(ValueError, match=message):
        model_params(searched)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_sampled_trial_draws_every_parameter_inside_its_range(
    seed: int, sampled_trial: Callable[[int], optuna.Trial]
) -> None:
    # GIVEN a trial of a real study
    trial = sampled_trial(seed)

    # WHEN it draws a point of the space
    point = suggest_params(trial)

    # THEN every parameter is drawn once, inside its range, as an integer where the range is one
    assert set(point) == set(SEARCH_SPACE)
    assert all(SEARCH_SPACE[name].contains(value) for name, value in point.items())
    assert all(isinstance(point[name], int) for name, bounds in SEARCH_SPACE.items() if bounds.integer)
    # AND the model parameters built from it are accepted
    assert model_params(point)["max_depth"] == point["max_depth"]


def test_an_enqueued_fixed_point_is_drawn_as_it_is() -> None:
    # GIVEN a trial that must replay the fixed parameters (the search's first trial)
    trial = optuna.trial.FixedTrial(fixed_point())

    # WHEN it draws a point THEN it is the fixed point
    assert suggest_params(trial) == fixed_point()


@pytest.mark.parametrize(
    ("bounds", "message"),
    [
        ({"low": 1.0, "high": 1.0}, "empty range"),
        ({"low": 2.0, "high": 1.0}, "empty range"),
        ({"low": 0.0, "high": 1.0, "log": True}, "positive low end"),
    ],
)
def test_a_range_that_cannot_be_searched_is_refused(bounds: dict[str, float], message: str) -> None:
    # GIVEN bounds with nothing to search, or a log scale reaching zero THEN the range is refused
    with pytest.raises(ValueError, match=message):
        ParameterRange(**bounds)  # type: ignore[arg-type]


def test_the_folds_come_from_the_training_rows_only(churn_frame: Callable[..., pd.DataFrame]) -> None:
    # GIVEN a labelled frame split into train and holdout as training splits it
    frame = churn_frame()
    train, holdout = split_holdout(frame)

    # WHEN the search cuts the train part into its cross-validation folds
    folds = cv_folds(train)

    # THEN there are CV_FOLDS of them, three as the search is configured
    assert CV_FOLDS == 3
    assert len(folds) == 3
    for fit, validation in folds:
        # AND in each, fit and validation rows share no row, cover the train part, and include no holdout row
        assert fit.index.intersection(validation.index).empty
        assert set(fit.index) | set(validation.index) == set(train.index)
        assert fit.index.union(validation.index).intersection(holdout.index).empty
        # AND the validation rows keep the train part's churn rate (stratified)
        assert validation[LABEL_COLUMN].mean() == pytest.approx(train[LABEL_COLUMN].mean(), abs=0.02)
    # AND every training row is validated in exactly one fold
    validated = [row for _, validation in folds for row in validation.index]
    assert sorted(validated) == sorted(train.index)
    # AND the folds are shuffled, not consecutive blocks of the train part
    assert not folds[0][1].index.equals(train.index[: len(folds[0][1])])
    # AND the same rows give the same folds
    assert [validation.index.tolist() for _, validation in cv_folds(train)] == [
        validation.index.tolist() for _, validation in folds
    ]


def test_too_few_churners_for_the_folds_are_refused(churn_frame: Callable[..., pd.DataFrame]) -> None:
    # GIVEN training rows with two churners, fewer than the three folds
    frame = churn_frame()
    churners = frame.index[frame[LABEL_COLUMN] == 1]
    train = frame.drop(churners[2:])

    # WHEN cut into folds THEN it is refused: some fold would have no churner to score F1 on
    with pytest.raises(ValueError, match="at least 3 rows of each label"):
        cv_folds(train)

    # AND with a third churner each fold validates exactly one
    folds = cv_folds(frame.drop(churners[3:]))
    assert [int(validation[LABEL_COLUMN].sum()) for _, validation in folds] == [1, 1, 1]


def test_a_trial_fits_every_fold_through_fit_model_on_its_fit_rows_only(
    churn_frame: Callable[..., pd.DataFrame], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the folds of a train part, and fit_model recording what it is given
    train, _ = split_holdout(churn_frame())
    folds = cv_folds(train)
    fitted: list[tuple[pd.Index, ModelParams]] = []
    real_fit_model = training.tuning.fit_model

    def recording_fit_model(frame: pd.DataFrame, params: ModelParams) -> XGBClassifier:
        fitted.append((frame.index, params))
        return real_fit_model(frame, params)

    monkeypatch.setattr(training.tuning, "fit_model", recording_fit_model)
    params = model_params(fixed_point())

    # WHEN a trial is cross-validated
    cross_validate(folds, params)

    # THEN one model per fold was fitted through fit_model, with the trial's parameters, on that fold's fit rows
    assert [index.tolist() for index, _ in fitted] == [fit.index.tolist() for fit, _ in folds]
    assert all(given == params for _, given in fitted)


def test_a_trial_scores_the_mean_f1_of_its_folds(churn_frame: Callable[..., pd.DataFrame]) -> None:
    # GIVEN the folds of a train part and a trial's parameters
    train, _ = split_holdout(churn_frame())
    folds = cv_folds(train)
    params = model_params({"max_depth": 3, "n_estimators": 60})

    # WHEN the trial is cross-validated
    scores = cross_validate(folds, params)

    # THEN each fold's metrics are those of a model fitted on its fit rows, predicting its validation rows
    # at the serving threshold (computed here with XGBoost and scikit-learn directly)
    expected_f1, expected_precision, expected_recall = [], [], []
    for fit, validation in folds:
        model = XGBClassifier(**params).fit(fit[list(FEATURE_COLUMNS)].astype("float32"), fit[LABEL_COLUMN])
        probabilities = model.predict_proba(validation[list(FEATURE_COLUMNS)].astype("float32"))[:, 1]
        predicted = (probabilities >= DEFAULT_DECISION_THRESHOLD).astype(int)
        labels = validation[LABEL_COLUMN].to_numpy()
        expected_f1.append(f1_score(labels, predicted))
        expected_precision.append(precision_score(labels, predicted))
        expected_recall.append(recall_score(labels, predicted))
    assert [fold["f1"] for fold in scores.folds] == pytest.approx(expected_f1)
    # AND the trial's score is their mean F1
    assert scores.score == pytest.approx(np.mean(expected_f1))
    # AND the trial's run metrics are the means and the F1 of each fold
    metrics = scores.run_metrics()
    assert metrics["cv_f1"] == pytest.approx(np.mean(expected_f1))
    assert metrics["cv_precision"] == pytest.approx(np.mean(expected_precision))
    assert metrics["cv_recall"] == pytest.approx(np.mean(expected_recall))
    assert [metrics[f"cv_f1_fold_{index}"] for index in range(CV_FOLDS)] == pytest.approx(expected_f1)
    assert "cv_f1_fold_3" not in metrics


def test_run_metrics_average_each_metric_over_the_folds() -> None:
    # GIVEN the metrics of three folds
    scores = CrossValidation(
        (
            {"f1": 0.6, "precision": 0.5, "recall": 0.75},
            {"f1": 0.9, "precision": 1.0, "recall": 0.9},
            {"f1": 0.0, "precision": 0.0, "recall": 0.0},
        )
    )

    # THEN the score is the mean F1, and the run metrics hold each mean and each fold's F1
    assert scores.score == pytest.approx(0.5)
    assert scores.run_metrics() == pytest.approx(
        {
            "cv_f1": 0.5,
            "cv_precision": 0.5,
            "cv_recall": 0.55,
            "cv_f1_fold_0": 0.6,
            "cv_f1_fold_1": 0.9,
            "cv_f1_fold_2": 0.0,
        }
    )
