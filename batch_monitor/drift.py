"""One window of predictions against its model version's reference: data drift, prediction drift, quality.

Drift method. Every feature is compared with the **normed Wasserstein distance** (the earth mover's
distance divided by the reference's standard deviation, i.e. "how far, in reference standard deviations,
did the distribution move"), with a threshold of **0.25**. All 13 features are numeric codes (counts,
money, ordinal steps, 0/1 or 1/2 flags), so one effect-size scale fits all of them: for a two-valued flag the
score is the change of its rate divided by the flag's standard deviation.

Why not Evidently's default: with a reference of more than 1,000 rows it uses the normed Wasserstein
distance for many-valued columns and Jensen-Shannon for few-valued ones, both at 0.1. A threshold of 0.1
sits inside the sampling noise of a window of a few hundred rows, so "drift" then mostly measures the
window size. P-value tests (KS, chi-squared) have the opposite problem: their sensitivity grows with the
window, flagging harmless shifts in large windows. A distance with a threshold above the small-window noise
behaves the same from a few hundred to many thousand rows.

Measured share of drifted columns against ``customer_churn_0`` as reference (1,050 rows); bootstrap windows
are ``data.synthetic.generate(base=...)`` resamples of the reference, 20 per size, "strong drift" is
``strong_drift()`` (10 columns moved by about one standard deviation), "half" the same at strength 0.5:

==============================  ======================  ==============================
current data                    default method          this method
==============================  ======================  ==============================
customer_churn_1 (1,050 rows)   7/13 = 0.54             2/13 = 0.15
customer_churn_2 (1,050 rows)   7/13 = 0.54             3/13 = 0.23
synthetic_1 / _2 / _3           0.08 / 0.15 / 0.08      0 / 0 / 0
bootstrap, 50 rows              --                      max 0.38, mean 0.11
bootstrap, 200 / 1,000 / 3,000  --                      max 0 at every size
strong drift, 50 to 3,000 rows  --                      min 0.85 at every size
half that drift, 50 rows        --                      min 0.77 (0.85 from 200 rows)
==============================  ======================  ==============================

Per column, reference-like noise stays below 0.22 at 200 rows (0.10 at 1,000) while strong drift scores
0.7 to 1.1. Against the bundled ``data/samples/reference.csv`` (3,000 synthetic rows) the reference-like
sample scores 0/13 and the drifted sample 11/13 (both methods agree on these clear cases).

``customer_churn_1`` and ``customer_churn_2`` are not a "close" and a "drifted" file: both differ from the
training split in the same few columns, in opposite directions (call failures by about five, subscription
length by two months, charge amount and age group by up to one step): 0.53 and 0.73 reference standard
deviations for call failures, 0.29 and 0.46 for the charge amount. The other columns move by about 0.1,
which is exactly where the default threshold sits, hence its 7/13 for both. This method flags the columns
that really moved and keeps the dataset-level verdict (share > 0.5) for broad shifts.

Large windows. Drift is judged on at most ``SAMPLE_ROWS`` = 100,000 records of a window
(:mod:`batch_monitor.window_data`): above that, the database keeps the records whose hashed record id falls
below ``100,000 / rows`` of the key space, a uniform sample that is the same on every run and keeps all
copies of a re-sent record together (:mod:`batch_monitor.sample_keys`). Row counts and quality are never
sampled: the database counts every record per (label, prediction), which gives the exact confusion counts
(:mod:`batch_monitor.quality`). Evidently then compares 20,000-point quantile summaries of each column with
the reference instead of the rows (:mod:`batch_monitor.summary`, error below 0.0001), because its run time
grows with the rows while the scores depend only on each column's distribution.

Why a sample: reading a million rows into Python takes longer than the five seconds a window may take
(about 6 s from SQLite), and plain Evidently on them takes 20 to 25 s and 1.3 GB. Exact per-column
histograms in SQL cost 14 grouped scans (Postgres' GROUPING SETS: 1.9 s for one million rows; SQLite has
none). Why it is enough: the sampling error of a score is about 1.1 / sqrt(n) reference standard deviations
(measured, worst column of the churn data): 0.003 for 100,000 of a million records, against verdicts decided
at 0.25. In the test scenarios at a million rows (reference-like, strong and half-strength drift, and the
real ``customer_churn_1`` / ``_2`` tiled) every score is about four standard errors or more from the
threshold: the nearest is 0.237 (subscription length and age in the two real files), and in 300 samples
of 100,000 records of those windows no verdict changed (largest score change 0.010). A column within about
0.01 of the threshold can come out either way; its distribution moved by a quarter of a standard deviation,
give or take a difference the threshold was never meant to resolve.

The churn probability uses the same distance and threshold (prediction drift, an alert of its own). The
reference holds the training rows scored in-sample, so its probabilities are a little sharper than live ones;
the threshold leaves room for that: against ``customer_churn_0``, windows of 300 rows resampled from it (20
per size) score at most 0.12, its holdout rows 0.12, the unseen ``customer_churn_1`` / ``_2`` 0.05 / 0.08, while
a surge of complaints (``generate(drift={"complains": 1.0})``) scores 0.50. ``strong_drift()`` scores only about
0.21: the model's output hardly moves when those ten columns do, which is what the feature drift is for.
Classification quality needs labels: it is computed on the labelled rows when there are at least ``min_rows``
of them and both classes occur (without, it is estimated: :mod:`batch_monitor.performance_estimation`).
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

from batch_monitor.drift_table import TableColumnDrift, drift_table_preset
from batch_monitor.evaluation import ColumnDrift, EvaluationStatus, WindowEvaluation
from batch_monitor.quality import WindowCounts, counts_of
from batch_monitor.summary import quantile_summary
from batch_monitor.windows import Window
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
    with_quality = counts.labelled >= min_rows and counts.both_classes
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
    """The drift run's input for a large window: each column's quantiles (see :mod:`batch_monitor.summary`)."""
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
