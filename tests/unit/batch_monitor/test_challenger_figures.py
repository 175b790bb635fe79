"""The challenger's window figures from counted groups: agreement with the champion, F1 on the labels."""

from __future__ import annotations

import pytest

from batch_monitor.core.challenger import ChallengerGroup, challenger_figures
from churn_common.schema import DECISION_THRESHOLD as MONITORED_THRESHOLD
from stream_scorer.model import DECISION_THRESHOLD

MIN_LABELLED = 10


def group(label: int | None, prediction: int, challenger_prediction: int, records: int, version: str = "2"):  # type: ignore[no-untyped-def]
    return ChallengerGroup(
        challenger_version=version,
        label=label,
        prediction=prediction,
        challenger_prediction=challenger_prediction,
        records=records,
    )


def test_agreement_is_the_share_of_records_both_decided_alike_and_f1_judges_the_challenger() -> None:
    # GIVEN 100 shadow-scored records: 70 decided alike; the challenger right on 30 of 40 labelled churners
    groups = [
        group(None, 0, 0, 50),
        group(None, 1, 1, 10),
        group(1, 1, 1, 10),  # tp, champion agrees
        group(1, 0, 1, 20),  # tp, champion disagrees
        group(1, 1, 0, 10),  # fn
    ]
    # WHEN the figures are computed
    figures = challenger_figures(groups, min_labelled=MIN_LABELLED)
    # THEN agreement is over every shadow-scored record, labelled or not
    assert figures is not None
    assert figures.agreement == pytest.approx(70 / 100)
    # AND F1 needs both classes among the labels: none of the stayers here
    assert figures.challenger_f1 is None
    # WHEN stayers are labelled too: 5 flagged wrongly by the challenger, 15 right
    figures = challenger_figures([*groups, group(0, 0, 1, 5), group(0, 0, 0, 15)], min_labelled=MIN_LABELLED)
    # THEN F1 = 2 tp / (2 tp + fp + fn) = 60 / (60 + 5 + 10)
    assert figures is not None
    assert figures.challenger_f1 == pytest.approx(60 / 75)
    assert figures.agreement == pytest.approx(85 / 120)


def test_too_few_labels_leave_f1_unset() -> None:
    figures = challenger_figures([group(1, 1, 1, 4), group(0, 0, 0, 4)], min_labelled=MIN_LABELLED)
    assert figures is not None
    assert (figures.agreement, figures.challenger_f1) == (1.0, None)


def test_without_shadow_scored_records_there_are_no_figures() -> None:
    assert challenger_figures([], min_labelled=MIN_LABELLED) is None


def test_a_window_shared_by_two_challengers_reports_the_one_that_scored_most_of_it() -> None:
    # GIVEN the alias moved within the window: version 2 scored 30 records, version 3 scored 70
    groups = [group(None, 0, 1, 30, version="2"), group(None, 0, 0, 70, version="3")]
    # THEN the figures are version 3's, over its own records only
    figures = challenger_figures(groups, min_labelled=MIN_LABELLED)
    assert figures is not None
    assert (figures.challenger_version, figures.agreement) == ("3", 1.0)


def test_the_challengers_decision_is_the_scorers() -> None:
    assert MONITORED_THRESHOLD == DECISION_THRESHOLD
