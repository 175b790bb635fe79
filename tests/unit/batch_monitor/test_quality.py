"""Quality from confusion counts: the same numbers as scikit-learn (and so the Evidently report) on the rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score

from batch_monitor.core.quality import WindowCounts, counts_of
from churn_common.registry import PREDICTION_COLUMN, TARGET_COLUMN


def frame_of(labels: list[int | None], predictions: list[int]) -> pd.DataFrame:
    return pd.DataFrame({TARGET_COLUMN: labels, PREDICTION_COLUMN: predictions})


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_counted_quality_equals_scikit_learn_on_the_labelled_rows(seed: int) -> None:
    # GIVEN 500 rows, about a third unlabelled, with predictions that are right about 80% of the time
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 2, 500)
    predicted = np.where(rng.random(500) < 0.8, truth, 1 - truth)
    labels = [None if rng.random() < 0.3 else int(t) for t in truth]
    # WHEN counted
    counts = counts_of(frame_of(labels, predicted.tolist()))
    # THEN the counts add up and each metric is scikit-learn's on the labelled rows
    labelled = [i for i, label in enumerate(labels) if label is not None]
    y, p = truth[labelled], predicted[labelled]
    assert (counts.rows, counts.labelled) == (500, len(labelled))
    assert counts.quality() == pytest.approx(
        {
            "f1": f1_score(y, p),
            "precision": precision_score(y, p),
            "recall": recall_score(y, p),
            "accuracy": accuracy_score(y, p),
        }
    )


def test_ratios_with_nothing_to_divide_by_are_zero_as_in_the_report() -> None:
    # GIVEN labelled rows of which the model flagged none WHEN counted THEN precision, recall and F1 are 0.0
    counts = counts_of(frame_of([1, 1, 0, 0], [0, 0, 0, 0]))
    assert counts.quality() == {"f1": 0.0, "precision": 0.0, "recall": 0.0, "accuracy": 0.5}


def test_database_groups_and_rows_in_memory_give_the_same_counts() -> None:
    # GIVEN the (label, prediction, records) groups a GROUP BY returns, unlabelled rows with label NULL
    groups = [(None, 0, 7), (None, 1, 3), (1, 1, 4), (0, 1, 1), (1, 0, 2), (0, 0, 5)]
    # WHEN summed THEN the cells are those of the same rows counted in memory
    rows = frame_of([None] * 10 + [1] * 4 + [0] + [1] * 2 + [0] * 5, [0] * 7 + [1] * 3 + [1] * 4 + [1] + [0] * 7)
    assert WindowCounts.from_groups(groups) == counts_of(rows) == WindowCounts(22, 4, 1, 2, 5)


@pytest.mark.parametrize(("labels", "both"), [([1, 0, None], True), ([1, 1, None], False), ([None, None, None], False)])
def test_quality_needs_both_classes_among_the_labels(labels: list[int | None], both: bool) -> None:
    assert counts_of(frame_of(labels, [1, 1, 1])).both_classes is both


def test_a_window_without_a_label_column_has_no_labelled_rows() -> None:
    assert counts_of(pd.DataFrame({PREDICTION_COLUMN: [0, 1]})) == WindowCounts(rows=2)


def test_more_labelled_records_than_records_is_refused() -> None:
    with pytest.raises(ValueError, match="3 labelled records in a window of 2"):
        WindowCounts(rows=2, true_positives=3)


def test_realised_quality_needs_enough_labels_of_both_classes_covering_enough_of_the_window() -> None:
    # GIVEN windows of 200 records with 60 labels of both classes, and with 120
    partly = WindowCounts(rows=200, true_positives=20, true_negatives=40)
    mostly = WindowCounts(rows=200, true_positives=40, true_negatives=80)
    # THEN coverage is labelled / rows, and the one rule judges rows, classes and coverage together
    assert (partly.coverage, mostly.coverage) == (0.3, 0.6)
    assert partly.judges_quality(min_labelled=50) is True
    assert partly.judges_quality(min_labelled=50, min_coverage=0.5) is False
    assert mostly.judges_quality(min_labelled=50, min_coverage=0.5) is True
    assert WindowCounts(rows=200, true_negatives=150).judges_quality(min_labelled=50, min_coverage=0.5) is False
    assert WindowCounts(rows=0).coverage == 0.0
