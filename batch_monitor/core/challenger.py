"""The challenger beside the champion in one window: how often they decide alike, and the challenger's F1.

The scorer stores the challenger's probability beside the champion's (shadow scoring,
``stream_scorer.challenger``), so both are judged on the same records. These figures come from counts the
database sums over every shadow-scored record of a window, like the champion's quality
(:mod:`batch_monitor.core.quality`): exact for a window of any size.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from batch_monitor.core.quality import QUALITY_METRICS, WindowCounts


@dataclass(frozen=True, slots=True)
class ChallengerGroup:
    """Shadow-scored records of a window sharing version, label (``None``: unlabelled) and both decisions."""

    challenger_version: str
    label: int | None
    prediction: int
    challenger_prediction: int
    records: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ChallengerFigures:
    challenger_version: str
    agreement: float
    challenger_f1: float | None


def challenger_figures(
    groups: Iterable[ChallengerGroup], *, min_labelled: int, min_coverage: float = 0.0
) -> ChallengerFigures | None:
    """The figures of the version that shadow-scored most of the window's records (the alias may have moved
    within it); ``None`` when no record was shadow-scored. F1 needs ``min_labelled`` labels of both classes
    covering ``min_coverage`` of the records, as the champion's quality does."""
    groups = list(groups)
    by_version = Counter[str]()
    for group in groups:
        by_version[group.challenger_version] += group.records
    if not by_version:
        return None
    version, records = by_version.most_common(1)[0]
    own = [g for g in groups if g.challenger_version == version]
    agreeing = sum(g.records for g in own if g.prediction == g.challenger_prediction)
    counts = WindowCounts.from_groups((g.label, g.challenger_prediction, g.records) for g in own)
    judged = counts.judges_quality(min_labelled=min_labelled, min_coverage=min_coverage)
    return ChallengerFigures(
        challenger_version=version,
        agreement=agreeing / records,
        challenger_f1=QUALITY_METRICS["f1"](counts) if judged else None,
    )
