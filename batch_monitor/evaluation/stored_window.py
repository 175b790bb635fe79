"""One stored window judged end to end: its rows read (a sample when large, counted exactly), then Evidently,
then its quality estimated from the calibrated probabilities (labels or not) and the estimate's error once
labels give the realised F1, then the shadow-scored challenger's agreement with the serving version, its F1
and its estimated F1 (calibrated on the challenger's own reference), when a challenger scored records of the
window.

This is all the monitor does per window and model version before storing and alerting, so its time is
the evaluation time of a window (the reference is loaded only for windows that are tested).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace

import pandas as pd
from sqlalchemy import Engine

from batch_monitor.core.challenger import challenger_figures
from batch_monitor.core.evaluation import (
    ESTIMATED_PREFIX,
    EvaluationStatus,
    WindowEvaluation,
    estimate_stood,
    f1_estimate_error,
)
from batch_monitor.core.window import Window
from batch_monitor.evaluation.drift import DEFAULT_DRIFT_SHARE_THRESHOLD, DEFAULT_MIN_ROWS, evaluate_window
from batch_monitor.evaluation.performance_estimation import estimate_challenger_f1, estimate_window_quality
from batch_monitor.window_data.challenger_counts import challenger_groups
from batch_monitor.window_data.reading import SAMPLE_ROWS, read_window
from batch_monitor.window_data.store import estimate_stood_before

logger = logging.getLogger(__name__)


def evaluate_stored_window(
    engine: Engine,
    *,
    window: Window,
    model_name: str,
    model_version: str,
    reference: Callable[[], pd.DataFrame],
    challenger_reference: Callable[[str], pd.DataFrame] | None = None,
    min_rows: int = DEFAULT_MIN_ROWS,
    min_label_coverage: float = 0.0,
    drift_share_threshold: float = DEFAULT_DRIFT_SHARE_THRESHOLD,
    sample_rows: int = SAMPLE_ROWS,
) -> WindowEvaluation:
    data = read_window(
        engine, window=window, model_name=model_name, model_version=model_version, sample_rows=sample_rows
    )
    if data.counts.rows < min_rows:
        return WindowEvaluation(
            window,
            model_version,
            EvaluationStatus.TOO_FEW_ROWS,
            data.counts.rows,
            n_labelled=data.counts.labelled,
            label_coverage=data.counts.coverage,
        )
    reference_rows = reference()
    evaluation = evaluate_window(
        data.rows,
        reference_rows,
        window=window,
        model_version=model_version,
        counts=data.counts,
        min_rows=min_rows,
        min_label_coverage=min_label_coverage,
        drift_share_threshold=drift_share_threshold,
    )
    if evaluation.status is not EvaluationStatus.EVALUATED:
        return evaluation
    estimated = estimate_window_quality(data.rows, reference_rows)
    evaluation = replace(evaluation, **{f"{ESTIMATED_PREFIX}{name}": value for name, value in estimated.items()})
    stood_before = estimate_stood_before(engine, window=window, model_version=model_version)
    evaluation = replace(
        evaluation,
        estimate_error=f1_estimate_error(estimated_f1=evaluation.estimated_f1, f1=evaluation.f1),
        estimate_stood=estimate_stood(f1=evaluation.f1, estimated_f1=evaluation.estimated_f1, before=stood_before),
    )
    groups = challenger_groups(engine, window=window, model_name=model_name, model_version=model_version)
    figures = challenger_figures(groups, min_labelled=min_rows, min_coverage=min_label_coverage)
    if figures is None:
        return evaluation
    return replace(
        evaluation,
        challenger_version=figures.challenger_version,
        agreement=figures.agreement,
        challenger_f1=figures.challenger_f1,
        challenger_estimated_f1=_challenger_estimate(data.rows, figures.challenger_version, challenger_reference),
    )


def _challenger_estimate(
    rows: pd.DataFrame, version: str, reference: Callable[[str], pd.DataFrame] | None
) -> float | None:
    """The challenger's estimated F1 on its shadow-scored rows; ``None`` (with a warning) when its reference
    cannot be had: the serving version's figures must not depend on the challenger's artefacts."""
    if reference is None:
        return None
    shadow = rows.loc[rows["challenger_version"] == version, "challenger_probability"]
    try:
        return estimate_challenger_f1(shadow.to_numpy(dtype="float64"), reference(version))
    except Exception:
        logger.warning("no estimated F1 for challenger v%s: its reference could not be used", version, exc_info=True)
        return None
