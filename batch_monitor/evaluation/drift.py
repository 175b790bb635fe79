"""One window of predictions against its model version's reference: data drift, prediction drift, quality.

Every feature, and the churn probability, is compared with the normed Wasserstein distance (how far, in
reference standard deviations, the distribution moved) at ``COLUMN_DRIFT_THRESHOLD``: one effect-size scale
fits all 13 features, as all are numeric codes, and a threshold above the sampling noise of small windows
judges a few hundred rows and many thousand alike, where Evidently's defaults and p-value tests do not.
Drift is judged on a uniform, repeatable sample of at most ``SAMPLE_ROWS`` records (quantile summaries go to
Evidently); row counts and quality are never sampled. Quality is computed from labels when at least
``min_rows`` labelled rows hold both classes and cover ``min_label_coverage`` of the window, else estimated
(:mod:`batch_monitor.evaluation.performance_estimation`).

Design notes: docs/batch_monitor.md#drift-method (measurements, sampling error, prediction drift)
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
from evidently import BinaryClassification, DataDefinition, Dataset, Report
from evidently.core.metric_types import render_widgets
from evidently.legacy.renderers.html_widgets import group_widget, text_widget
from evidently.metrics import ValueDrift
from evidently.presets import ClassificationPreset

from batch_monitor.core.evaluation import ColumnDrift, EvaluationStatus, WindowEvaluation
from batch_monitor.core.quality import WindowCounts, counts_of
from batch_monitor.core.window import Window
from batch_monitor.evaluation.drift_table import TableColumnDrift, drift_table_preset
from batch_monitor.evaluation.summary import quantile_summary
from churn_common.registry import PREDICTION_COLUMN, PROBABILITY_COLUMN, TARGET_COLUMN
from churn_common.schema import FEATURE_COLUMNS

COLUMN_DRIFT_METHOD = "wasserstein"
COLUMN_DRIFT_THRESHOLD = 0.25
DEFAULT_DRIFT_SHARE_THRESHOLD = 0.5
DEFAULT_MIN_ROWS = 50
# Above this many rows the drift run sees per-column quantile summaries of this many points.
DRIFT_SUMMARY_POINTS = 20_000
# The report's classification section shows at most this many labelled rows; the stored quality is exact.
QUALITY_REPORT_ROWS = 20_000
QUALITY_REPORT_SEED = 0

# Distances drift when large, p-values when small.
_DRIFT_DETECTED: Mapping[str, Callable[[float, float], bool]] = {
    "wasserstein": operator.ge,
    "jensenshannon": operator.ge,
    "psi": operator.ge,
    "hellinger": operator.ge,
    "kl_div": operator.ge,
    "ks": operator.lt,
    "chisquare": operator.lt,
    "z": operator.lt,
}
_METRIC_TYPE_PREFIX = "evidently:metric_v2:"


@dataclass(frozen=True, slots=True)
class DriftTest:
    method: str
    threshold: float

    def __post_init__(self) -> None:
        if self.method not in _DRIFT_DETECTED:
            raise ValueError(f"unsupported drift method {self.method!r}; one of {', '.join(_DRIFT_DETECTED)}")

    def detects(self, score: float) -> bool:
        return _DRIFT_DETECTED[self.method](score, self.threshold)


DEFAULT_DRIFT_TEST = DriftTest(COLUMN_DRIFT_METHOD, COLUMN_DRIFT_THRESHOLD)
COLUMN_DRIFT_TESTS: Mapping[str, DriftTest] = dict.fromkeys(FEATURE_COLUMNS, DEFAULT_DRIFT_TEST)
PREDICTION_DRIFT_TEST = DEFAULT_DRIFT_TEST


def evaluate_window(
    current: pd.DataFrame,
    reference: pd.DataFrame,
    *,
    window: Window,
    model_version: str,
    counts: WindowCounts | None = None,
    min_rows: int = DEFAULT_MIN_ROWS,
    min_label_coverage: float = 0.0,
    drift_share_threshold: float = DEFAULT_DRIFT_SHARE_THRESHOLD,
    column_tests: Mapping[str, DriftTest] = COLUMN_DRIFT_TESTS,
    prediction_test: DriftTest = PREDICTION_DRIFT_TEST,
    summary_points: int = DRIFT_SUMMARY_POINTS,
    quality_report_rows: int = QUALITY_REPORT_ROWS,
) -> WindowEvaluation:
    """Run Evidently on one window; windows under ``min_rows`` are not tested (their verdict would be noise).

    ``current`` holds the window's records, or a uniform sample of them when ``counts`` (exact, over every
    record) says the window is larger; without ``counts`` they are counted in ``current``. Quality always
    comes from the counts; the report shows it on at most ``quality_report_rows`` labelled rows.
    """
    counts = counts if counts is not None else counts_of(current)
    if counts.rows < min_rows:
        return WindowEvaluation(window, model_version, EvaluationStatus.TOO_FEW_ROWS, counts.rows)
    if len(current) > counts.rows:
        raise ValueError(f"{len(current)} rows given for a window of {counts.rows} records")
    current, reference = _prepared(current), _prepared(reference)
    with_quality = counts.judges_quality(min_labelled=min_rows, min_coverage=min_label_coverage)
    shown = _quality_rows(current, limit=quality_report_rows, min_rows=min_rows) if with_quality else None
    drift_rows = _summarised(current, points=summary_points) if len(current) > summary_points else current
    reference_data = Dataset.from_pandas(reference, data_definition=_definition(classification=True))

    drift_metrics = _drift_metrics(column_tests, prediction_test, drift_share_threshold)
    if shown is not None and len(shown) == len(current) and drift_rows is current:
        runs = [_run([*drift_metrics, ClassificationPreset()], shown, reference_data, classification=True)]
        titles: tuple[str, ...] = ("Data drift and classification quality",)
    else:
        runs = [_run(drift_metrics, drift_rows, reference_data, classification=False)]
        if shown is not None:
            runs.append(_run([ClassificationPreset()], shown, reference_data, classification=True))
        titles = ("Data drift", "Classification quality (labelled rows)")

    values = [m for run in runs for m in run.dict()["metrics"]]
    columns = tuple(_column_drift(m, column_tests) for m in _of_type(values, TableColumnDrift.__name__))
    prediction = next(
        _column_drift(m, {PROBABILITY_COLUMN: prediction_test})
        for m in _of_type(values, "ValueDrift")
        if m["config"]["column"] == PROBABILITY_COLUMN
    )
    share = float(next(_of_type(values, "DriftedColumnsCount"))["value"]["share"])
    quality = counts.quality() if with_quality else {}
    note = _note(counts, drift_rows=len(current), summary_points=len(drift_rows), shown=shown, quality=quality)
    return WindowEvaluation(
        window,
        model_version,
        EvaluationStatus.EVALUATED,
        counts.rows,
        n_labelled=counts.labelled,
        label_coverage=counts.coverage,
        n_drift_rows=len(current),
        columns=columns,
        drift_share=share,
        dataset_drift=share > drift_share_threshold,
        prediction_drift=prediction,
        html=_page(runs, titles=titles, note=note),
        snapshots=tuple(runs),
        **quality,
    )


def _summarised(current: pd.DataFrame, *, points: int) -> pd.DataFrame:
    """The drift run's input for a large window: each column's quantiles (:mod:`batch_monitor.evaluation.summary`)."""
    columns = [*FEATURE_COLUMNS, PROBABILITY_COLUMN, PREDICTION_COLUMN]
    summary = quantile_summary(current, points=points, columns=columns)
    return summary.astype({PREDICTION_COLUMN: "int64"}).assign(**{TARGET_COLUMN: float("nan")})


def _quality_rows(current: pd.DataFrame, *, limit: int, min_rows: int) -> pd.DataFrame | None:
    """The labelled rows the report shows (a fixed random subset above ``limit``), if they can be judged."""
    labelled = current[current[TARGET_COLUMN].notna()].astype({TARGET_COLUMN: "int64"})
    if len(labelled) > limit:
        labelled = labelled.sample(n=limit, random_state=QUALITY_REPORT_SEED).sort_index()
    if len(labelled) < min_rows or labelled[TARGET_COLUMN].nunique() != 2:
        return None
    return labelled


def _note(
    counts: WindowCounts,
    *,
    drift_rows: int,
    summary_points: int,
    shown: pd.DataFrame | None,
    quality: Mapping[str, float],
) -> str | None:
    """What the report rests on, when that is less than every record of the window."""
    lines = []
    if drift_rows < counts.rows:
        lines.append(f"Drift: a uniform sample of {drift_rows:,} of all {counts.rows:,} records in the window.")
    if summary_points < drift_rows:
        lines.append(
            f"Evidently compared {summary_points:,}-point quantile summaries of each column with the reference "
            "(the same distributions, to within 0.0001 reference standard deviations); row counts in the drift "
            "section are those of the summaries, and their row order carries no time."
        )
    if quality and (shown is None or len(shown) < counts.labelled):
        exact = ", ".join(f"{name} {value:.4f}" for name, value in quality.items())
        part = "not shown" if shown is None else f"shown on {len(shown):,} of them"
        lines.append(f"Quality, exact over all {counts.labelled:,} labelled records: {exact} ({part}).")
    return " ".join(lines) or None


def _prepared(frame: pd.DataFrame) -> pd.DataFrame:
    """The columns Evidently sees, with one dtype per column on both sides."""
    out = frame.loc[:, [*FEATURE_COLUMNS, PROBABILITY_COLUMN, PREDICTION_COLUMN]].astype("float64")
    out[PREDICTION_COLUMN] = out[PREDICTION_COLUMN].astype("int64")
    out[TARGET_COLUMN] = (
        pd.to_numeric(frame[TARGET_COLUMN], errors="coerce") if TARGET_COLUMN in frame else float("nan")
    )
    return out.reset_index(drop=True)


def _definition(*, classification: bool) -> DataDefinition:
    tasks = [
        BinaryClassification(
            target=TARGET_COLUMN, prediction_labels=PREDICTION_COLUMN, prediction_probas=PROBABILITY_COLUMN, pos_label=1
        )
    ]
    return DataDefinition(
        numerical_columns=[*FEATURE_COLUMNS, PROBABILITY_COLUMN], classification=tasks if classification else None
    )


def _drift_metrics(column_tests: Mapping[str, DriftTest], prediction_test: DriftTest, share: float) -> list[Any]:
    return [
        drift_table_preset(
            methods={c: t.method for c, t in column_tests.items()},
            thresholds={c: t.threshold for c, t in column_tests.items()},
            drift_share=share,
        ),
        ValueDrift(column=PROBABILITY_COLUMN, method=prediction_test.method, threshold=prediction_test.threshold),
    ]


def _run(metrics: list[Any], current: pd.DataFrame, reference: Dataset, *, classification: bool) -> Any:
    data = Dataset.from_pandas(current, data_definition=_definition(classification=classification))
    return Report(metrics).run(reference_data=reference, current_data=data)


def _of_type(metrics: Sequence[dict[str, Any]], kind: str) -> Any:
    return (m for m in metrics if m["config"]["type"] == _METRIC_TYPE_PREFIX + kind)


def _column_drift(metric: dict[str, Any], tests: Mapping[str, DriftTest]) -> ColumnDrift:
    column, score = metric["config"]["column"], float(metric["value"])
    test = tests[column]
    return ColumnDrift(column, test.method, score, test.threshold, test.detects(score))


def _page(runs: Sequence[Any], *, titles: Sequence[str], note: str | None = None) -> str:
    """One report page; a partly labelled or a large window has two runs (drift, and quality on labelled rows).

    Two runs become one Evidently page with a section each, not two pages side by side: each page carries
    Evidently's 3.5 MB script, so one page halves the report (4.6 MB instead of 9.7 MB).
    """
    if len(runs) == 1 and note is None:
        return str(runs[0].get_html_str(as_iframe=False))
    widgets = [] if note is None else [text_widget(title="About this report", text=note)]
    for title, run in zip(titles, runs, strict=False):
        stored = run.to_snapshot_model()
        widgets += [group_widget(title=title, widgets=list(stored.widgets)), *stored.tests_widgets]
    return str(render_widgets(widgets, as_iframe=False))
