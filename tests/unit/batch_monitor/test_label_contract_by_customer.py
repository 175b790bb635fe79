"""Label files that name the customer instead of (or beside) the record: which id a row joins by, and why a row
that names neither is rejected."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest

from batch_monitor.labels.contract import LabelStatus, file_outcomes, parse_label_csv

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
OBSERVED = "2026-11-30T10:00:00+00:00"


def label_csv(header: tuple[str, ...], rows: list[list[str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def test_a_file_by_customer_id_alone_is_valid() -> None:
    # GIVEN a file whose header names customers, not records
    text = label_csv(("customer_id", "churned", "observed_at"), [["C1", "1", OBSERVED], [" C2 ", "0", OBSERVED]])
    # WHEN parsed THEN each row is a label by customer, padding dropped, no record id
    labels = [row.label for row in parse_label_csv(text)]
    assert [(label.customer_id, label.record_id, label.churned) for label in labels if label] == [
        ("C1", None, 1),
        ("C2", None, 0),
    ]


def test_a_row_with_both_ids_keeps_both_and_a_row_with_neither_is_rejected() -> None:
    # GIVEN a header with both id columns: a row with both, one with each, one with neither
    header = ("record_id", "customer_id", "churned", "observed_at")
    text = label_csv(
        header,
        [["r1", "C1", "1", OBSERVED], ["r2", "", "1", OBSERVED], ["", "C3", "0", OBSERVED], ["", "", "1", OBSERVED]],
    )
    # WHEN parsed
    rows = parse_label_csv(text)
    # THEN the first three are labels with the ids they gave, the last is rejected with its reason
    assert [(r.label.record_id, r.label.customer_id) for r in rows[:3] if r.label] == [
        ("r1", "C1"),
        ("r2", None),
        (None, "C3"),
    ]
    assert rows[3].label is None
    assert "record_id and customer_id are empty" in (rows[3].reason or "")


@pytest.mark.parametrize(
    ("value", "reason"),
    [("x" * 65, "at most 64 characters"), ("C1\u0007", "not printable")],
)
def test_an_unusable_customer_id_rejects_its_row_and_is_kept_for_the_record(value: str, reason: str) -> None:
    [row] = parse_label_csv(label_csv(("customer_id", "churned", "observed_at"), [[value, "1", OBSERVED]]))
    assert row.label is None
    assert reason in (row.reason or "")
    assert row.customer_id == value[:64]


def test_a_header_without_either_id_rejects_every_row_naming_both() -> None:
    rows = parse_label_csv(label_csv(("customer", "churned", "observed_at"), [["C1", "1", OBSERVED]]))
    assert [r.label for r in rows] == [None]
    assert "lacks record_id or customer_id" in (rows[0].reason or "")


def test_observed_at_is_a_moment_in_utc_whatever_its_offset() -> None:
    [row] = parse_label_csv(
        label_csv(("customer_id", "churned", "observed_at"), [["C1", "1", "2026-11-30T12:00:00+02:00"]])
    )
    assert row.label is not None
    assert row.label.observed_at == datetime(2026, 11, 30, 10, tzinfo=UTC)
    assert row.label.observed_at.utcoffset() == timedelta(0)


def test_customer_rows_are_candidates_each_while_record_rows_repeat_as_duplicates() -> None:
    # GIVEN a file with two observations of one customer, a repeated record id and an old customer label
    header = ("record_id", "customer_id", "churned", "observed_at")
    recent, later, old = ((NOW - timedelta(days=d)).isoformat() for d in (3, 1, 40))
    text = label_csv(
        header,
        [
            ["", "C1", "1", recent],
            ["", "C1", "0", later],
            ["r1", "", "1", recent],
            ["r1", "C9", "0", recent],
            ["", "C2", "1", old],
        ],
    )
    # WHEN outcomes are decided under a 30-day retention
    outcomes = file_outcomes(parse_label_csv(text), now=NOW, retention_days=30)
    # THEN both customer rows are left to the database, the second r1 row is a duplicate, the old one too old
    assert [(o.record_id, o.customer_id, o.status) for o in outcomes] == [
        (None, "C1", None),
        (None, "C1", None),
        ("r1", None, None),
        ("r1", "C9", LabelStatus.DUPLICATE),
        (None, "C2", LabelStatus.TOO_OLD),
    ]
