"""Classification quality from confusion counts: exact over a whole window, however large.

The database sums the counts over every labelled record, so quality is never estimated, even for a window
whose drift is computed on a sample. The metrics follow scikit-learn's definitions for the positive class
(churn = 1), with 0.0 where a ratio has nothing to divide by, as the Evidently report shows them. They judge
the decision the scorer stored (``churn_prediction``); Evidently's report thresholds the probability at 0.5,
which is the same decision while the scorer's threshold is 0.5.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

import pandas as pd

from churn_common.registry import PREDICTION_COLUMN, TARGET_COLUMN


@dataclass(frozen=True, slots=True)
class WindowCounts:
    """Records of a window (each source record once) and the confusion counts of the labelled ones."""

    rows: int
    true_positives: int = 0
    false_positives: int = 0
    false_negatives: int = 0
    true_negatives: int = 0

    def __post_init__(self) -> None:
        if self.labelled > self.rows:
            raise ValueError(f"{self.labelled} labelled records in a window of {self.rows}")

    @property
    def labelled(self) -> int:
        return self.true_positives + self.false_positives + self.false_negatives + self.true_negatives

    @property
    def both_classes(self) -> bool:
        """Quality is only meaningful when churners and stayers are both among the labels."""
        return self.true_positives + self.false_negatives > 0 and self.false_positives + self.true_negatives > 0

    @property
    def coverage(self) -> float:
        """Share of the records that carry a label (0.0 for an empty window)."""
        return self.labelled / self.rows if self.rows else 0.0

    def judges_quality(self, *, min_labelled: int, min_coverage: float = 0.0) -> bool:
        """The one rule for "enough labels": ``min_labelled`` labels of both classes, covering at least
        ``min_coverage`` of the records. Labels arrive later than predictions, so a window with a first few
        labels would otherwise report a realised quality of whichever records happened to be labelled first."""
        return self.labelled >= min_labelled and self.both_classes and self.coverage >= min_coverage

    def quality(self) -> dict[str, float]:
        return {name: metric(self) for name, metric in QUALITY_METRICS.items()}

    @classmethod
    def from_groups(cls, groups: Iterable[tuple[int | None, int, int]]) -> WindowCounts:
        """From ``(label, prediction, records)`` groups; an unlabelled group has the label ``None``."""
        cells = {"rows": 0}
        for label, prediction, records in groups:
            cells["rows"] += int(records)
            if label is not None:
                cell = _CELLS[(int(label), int(prediction))]
                cells[cell] = cells.get(cell, 0) + int(records)
        return cls(**cells)


def counts_of(frame: pd.DataFrame) -> WindowCounts:
    """The counts of rows already in memory (one row per record), as the database would sum them."""
    if TARGET_COLUMN not in frame:
        return WindowCounts(rows=len(frame))
    labels = pd.to_numeric(frame[TARGET_COLUMN], errors="coerce")
    labelled = labels.notna()
    predictions = frame.loc[labelled, PREDICTION_COLUMN].astype("int64")
    cells = Counter(zip(labels[labelled].astype("int64"), predictions, strict=True))
    unlabelled = (None, 0, int((~labelled).sum()))
    return WindowCounts.from_groups([unlabelled, *((label, prediction, n) for (label, prediction), n in cells.items())])


class ConfusionCounts(Protocol):
    """Counted (:class:`WindowCounts`) or expected (:mod:`batch_monitor.evaluation.performance_estimation`) cells."""

    @property
    def true_positives(self) -> float: ...
    @property
    def false_positives(self) -> float: ...
    @property
    def false_negatives(self) -> float: ...
    @property
    def true_negatives(self) -> float: ...
    @property
    def labelled(self) -> float: ...


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else 0.0


_CELLS: Mapping[tuple[int, int], str] = {
    (1, 1): "true_positives",
    (0, 1): "false_positives",
    (1, 0): "false_negatives",
    (0, 0): "true_negatives",
}
QUALITY_METRICS: Mapping[str, Callable[[ConfusionCounts], float]] = {
    "f1": lambda c: _ratio(2 * c.true_positives, 2 * c.true_positives + c.false_positives + c.false_negatives),
    "precision": lambda c: _ratio(c.true_positives, c.true_positives + c.false_positives),
    "recall": lambda c: _ratio(c.true_positives, c.true_positives + c.false_negatives),
    "accuracy": lambda c: _ratio(c.true_positives + c.true_negatives, c.labelled),
}
