"""A bounded search for the model's parameters, run by ``make model-registry``.

The fixed parameters (:data:`training.model.XGB_PARAMS`) were picked once by hand; a search finds ones that
fit the data at hand, and its budget (trials and seconds, ``TUNING_TRIALS`` / ``TUNING_TIMEOUT_SECONDS``)
keeps ``make model-registry`` from running for an unknown time.

Each trial is scored by stratified k-fold cross-validation on the training rows only (:data:`CV_FOLDS`
folds, shuffled with the fixed seed): the mean F1 over the folds, each fold fitted through the same
:func:`training.model.fit_model` as the registered version. The holdout stays unseen until the gate judges
the chosen model, so the search cannot flatter the metrics the gate reads. Cross-validation rather than one
validation split, because one split of the few hundred training rows holds some 30 churners: one customer
moves its F1 by about 0.02, and a search scored on it picks whichever parameters that split happens to
favour. Across the folds every training row is scored once, by a model that did not see it, so a trial's
score rests on all the training churners rather than a quarter of them; the per-fold F1s are logged with
the mean, so their spread shows how much of a difference between trials may be noise.

The sampler's seed is fixed, and so are the folds, so the same rows and budget give the same trials (unless
the time limit cuts them short). The first trial is the fixed parameters, so the search never chooses
parameters that score worse than them on the cross-validated F1.

Optuna is imported only inside the function that runs the study, and only :mod:`training.train` imports this
module: the retraining takes its training functions from this package's face and never searches, and the
monitor image's requirements follow the imports of what it reaches.

Design notes: docs/training.md#parameter-search
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd
from sklearn.model_selection import StratifiedKFold

from churn_common.schema import LABEL_COLUMN
from training.model import RANDOM_SEED, XGB_PARAMS, ModelParams, fit_model, holdout_metrics

if TYPE_CHECKING:
    from optuna import Trial

CV_FOLDS = 3
SEARCH_SEED = RANDOM_SEED
OBJECTIVE_METRIC = "f1"  # the gate's first metric
CV_METRIC_PREFIX = "cv_"
TRIAL_RUN_TAG = "tuning_trial"
BEST_TRIAL_RUN_TAG = "tuning_best_trial_run_id"
TRIAL_RUN_ATTRIBUTE = "mlflow_run_id"


@dataclass(frozen=True, slots=True)
class ParameterRange:
    """The interval a parameter is searched in; ``log`` for scale-like parameters, whose useful values span
    orders of magnitude, so that each order gets as many trials."""

    low: float
    high: float
    log: bool = False
    integer: bool = False

    def __post_init__(self) -> None:
        if not self.low < self.high:
            raise ValueError(f"empty range [{self.low}, {self.high}]")
        if self.log and self.low <= 0:
            raise ValueError(f"a log range needs a positive low end, got {self.low}")

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high and (not self.integer or float(value).is_integer())


SEARCH_SPACE: Mapping[str, ParameterRange] = {
    "n_estimators": ParameterRange(50, 600, integer=True),
    "max_depth": ParameterRange(2, 8, integer=True),
    "learning_rate": ParameterRange(0.01, 0.3, log=True),
    "subsample": ParameterRange(0.6, 1.0),
    "colsample_bytree": ParameterRange(0.5, 1.0),
    "min_child_weight": ParameterRange(1.0, 20.0, log=True),
    "reg_lambda": ParameterRange(1e-3, 10.0, log=True),
}

# XGBoost's own defaults for the searched parameters that XGB_PARAMS leaves unset.
XGBOOST_DEFAULTS: Mapping[str, float] = {"min_child_weight": 1.0, "reg_lambda": 1.0}


def fixed_point() -> dict[str, float | int | str]:
    """The fixed parameters as a point of the search space: the search's first trial, so that it has the
    model trained without a search to beat."""
    return {name: XGB_PARAMS[name] if name in XGB_PARAMS else XGBOOST_DEFAULTS[name] for name in SEARCH_SPACE}


def model_params(searched: Mapping[str, float | int]) -> dict[str, float | int | str]:
    """The parameters a model is fitted with: the searched ones over the fixed rest (objective, threads,
    seed), which a search must not change."""
    unknown = set(searched) - set(SEARCH_SPACE)
    if unknown:
        raise ValueError(f"not in the search space: {sorted(unknown)}")
    outside = {name: value for name, value in searched.items() if not SEARCH_SPACE[name].contains(value)}
    if outside:
        raise ValueError(f"outside the search space: {outside}")
    return {**XGB_PARAMS, **searched}


def suggest_params(trial: Trial) -> dict[str, float | int]:
    """One point of the search space, drawn by the study's sampler."""
    return {
        name: trial.suggest_int(name, int(bounds.low), int(bounds.high), log=bounds.log)
        if bounds.integer
        else trial.suggest_float(name, bounds.low, bounds.high, log=bounds.log)
        for name, bounds in SEARCH_SPACE.items()
    }


def cv_folds(train: pd.DataFrame) -> list[tuple[pd.DataFrame, pd.DataFrame]]:
    """The :data:`CV_FOLDS` (fit rows, validation rows) pairs a trial is scored on, all from ``train`` (never
    the holdout): every row is validated in exactly one fold, and each fold keeps the churn rate (stratified,
    shuffled with the fixed seed, so the same rows give the same folds)."""
    per_label = train[LABEL_COLUMN].value_counts()
    if len(per_label) < 2 or per_label.min() < CV_FOLDS:
        # A fold without a churner would score F1 0 whatever the parameters (scikit-learn only warns).
        raise ValueError(f"{CV_FOLDS} folds need at least {CV_FOLDS} rows of each label, got {per_label.to_dict()}")
    splitter = StratifiedKFold(n_splits=CV_FOLDS, shuffle=True, random_state=SEARCH_SEED)
    return [
        (train.iloc[fit_rows], train.iloc[validation_rows])
        for fit_rows, validation_rows in splitter.split(train, train[LABEL_COLUMN])
    ]


@dataclass(frozen=True, slots=True)
class CrossValidation:
    """The metrics of each fold's model on that fold's validation rows, in fold order."""

    folds: tuple[Mapping[str, float], ...]

    def mean(self, metric: str) -> float:
        return sum(fold[metric] for fold in self.folds) / len(self.folds)

    @property
    def score(self) -> float:
        """What the search maximizes: the mean F1 over the folds."""
        return self.mean(OBJECTIVE_METRIC)

    def run_metrics(self) -> dict[str, float]:
        """A trial's run metrics: the mean of each metric over the folds (``cv_f1``, ``cv_precision``, ...)
        and the objective of each fold (``cv_f1_fold_0``, ...)."""
        means = {f"{CV_METRIC_PREFIX}{name}": self.mean(name) for name in self.folds[0]}
        per_fold = {
            f"{CV_METRIC_PREFIX}{OBJECTIVE_METRIC}_fold_{index}": fold[OBJECTIVE_METRIC]
            for index, fold in enumerate(self.folds)
        }
        return {**means, **per_fold}


def cross_validate(folds: list[tuple[pd.DataFrame, pd.DataFrame]], params: ModelParams) -> CrossValidation:
    """Fit ``params`` on each fold's fit rows (through :func:`fit_model`, like every model) and score it on
    that fold's validation rows."""
    return CrossValidation(tuple(holdout_metrics(fit_model(fit, params), validation) for fit, validation in folds))


@dataclass(frozen=True, slots=True)
class SearchResult:
    """What training fits the registered model with: ``params`` are the fixed ones when no trial completed
    (no search asked for, or a time limit shorter than one trial). ``best_cv_f1`` is the best
    trial's cross-validated score (mean F1 over the folds)."""

    params: ModelParams
    trials_completed: int
    best_cv_f1: float | None = None
    best_trial_run_id: str | None = None


def search_parameters(train: pd.DataFrame, *, trials: int, timeout_seconds: float, experiment_id: str) -> SearchResult:
    """Search under the active MLflow run: each trial a nested run with its parameters and cross-validation
    metrics; the active run gets the budget, the trials completed and the best trial's score and run."""
    import mlflow

    mlflow.log_params({"tuning_trials": trials, "tuning_timeout_seconds": timeout_seconds})
    result = _run_study(train, trials=trials, timeout_seconds=timeout_seconds, experiment_id=experiment_id)
    mlflow.log_metric("tuning_trials_completed", result.trials_completed)
    if result.best_cv_f1 is not None:
        mlflow.log_metric(f"tuning_best_{CV_METRIC_PREFIX}{OBJECTIVE_METRIC}", result.best_cv_f1)
    if result.best_trial_run_id is not None:
        mlflow.set_tag(BEST_TRIAL_RUN_TAG, result.best_trial_run_id)
    return result


def _run_study(train: pd.DataFrame, *, trials: int, timeout_seconds: float, experiment_id: str) -> SearchResult:
    if trials <= 0:
        return SearchResult(params=XGB_PARAMS, trials_completed=0)
    import mlflow
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # each trial is a nested run: its line adds nothing
    folds = cv_folds(train)

    def objective(trial: optuna.Trial) -> float:
        params = model_params(suggest_params(trial))
        with mlflow.start_run(experiment_id=experiment_id, run_name=f"trial-{trial.number}", nested=True) as run:
            trial.set_user_attr(TRIAL_RUN_ATTRIBUTE, run.info.run_id)
            mlflow.set_tag(TRIAL_RUN_TAG, str(trial.number))
            mlflow.log_params(params)
            scores = cross_validate(folds, params)
            mlflow.log_metrics(scores.run_metrics())
        return scores.score

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=SEARCH_SEED))
    study.enqueue_trial(fixed_point())
    study.optimize(objective, n_trials=trials, timeout=timeout_seconds)
    completed = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not completed:
        return SearchResult(params=XGB_PARAMS, trials_completed=0)
    best = study.best_trial
    return SearchResult(
        params=model_params(best.params),
        trials_completed=len(completed),
        best_cv_f1=float(best.value) if best.value is not None else None,
        best_trial_run_id=str(best.user_attrs[TRIAL_RUN_ATTRIBUTE]),
    )
