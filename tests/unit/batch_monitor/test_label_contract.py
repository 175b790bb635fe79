"""The label file contract and each row's outcome within its file: names, gzip, rows kept with their reason."""

from __future__ import annotations

import csv
import gzip
import io
from datetime import UTC, datetime, timedelta

import pytest

from batch_monitor.labels.contract import LabelStatus, file_outcomes, parse_label_csv
from batch_monitor.labels.formats import LabelFileError, csv_text, is_label_file_name
from batch_monitor.labels.ingest import outcomes_of

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def label_csv(rows: list[list[str]], *, header: tuple[str, ...] = ("record_id", "churned", "observed_at")) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


@pytest.mark.parametrize(
    ("key", "read"),
    [
        ("data/labels/a.csv", True),
        ("data/labels/A.CSV", True),
        ("data/labels/a.csv.gz", True),
        ("data/labels/LABELS.CSV.GZ", True),
        ("data/labels/a.Csv.Gz", True),
        ("data/labels/a.txt", False),
        ("data/labels/a.csv.zip", False),
        ("data/labels/", False),
    ],
)
def test_label_files_are_recognised_by_their_name_whatever_its_case(key: str, read: bool) -> None:
    assert is_label_file_name(key) is read


def test_gzip_is_recognised_by_its_bytes_and_a_byte_order_mark_is_dropped() -> None:
    # GIVEN the same CSV text, plain with a byte order mark and gzipped in two members
    text = label_csv([["r1", "1", "2026-11-30T10:00:00+00:00"]])
    members = gzip.compress(text[:10].encode()) + gzip.compress(text[10:].encode())
    # THEN both read as the text
    assert csv_text(b"\xef\xbb\xbf" + text.encode()) == text
    assert csv_text(members) == text
    # AND corrupt gzip is an error of the file, not a row
    with pytest.raises(LabelFileError):
        csv_text(gzip.compress(text.encode())[:-12])


def test_valid_rows_become_labels_and_bad_rows_are_kept_with_their_reason() -> None:
    # GIVEN a file with one valid row of each class and one bad row of each kind
    text = label_csv(
        [
            ["r1", "1", "2026-11-30T10:00:00+00:00"],
            ["r2", "0", "2026-11-30T10:00:00Z"],
            ["r3", "yes", "2026-11-30T10:00:00+00:00"],
            ["r4", "1", "2026-11-30T10:00:00"],
            ["r5", "1", "yesterday"],
            ["", "1", "2026-11-30T10:00:00+00:00"],
            ["r7", "1"],
            ["x" * 81, "0", "2026-11-30T10:00:00+02:00"],
        ]
    )
    # WHEN it is parsed
    rows = parse_label_csv(text)
    # THEN every data row is there, numbered from 1, valid or with its reason
    assert [r.row for r in rows] == list(range(1, 9))
    assert [(r.label.record_id, r.label.churned) for r in rows[:2] if r.label] == [("r1", 1), ("r2", 0)]
    assert rows[1].label is not None
    assert rows[1].label.observed_at == datetime(2026, 11, 30, 10, tzinfo=UTC)
    reasons = [r.reason or "" for r in rows[2:]]
    assert all(r.label is None for r in rows[2:])
    assert "churned must be 0 or 1" in reasons[0]
    assert "no UTC offset" in reasons[1]
    assert "not an ISO-8601 time" in reasons[2]
    assert "record_id is empty" in reasons[3]
    assert "2 fields where the header has 3" in reasons[4]
    assert "longer than 80" in reasons[5]
    # AND a rejected row keeps its record id when it had one
    assert rows[2].record_id == "r3"


def test_a_header_without_the_contract_columns_rejects_every_row() -> None:
    text = label_csv([["r1", "1"], ["r2", "0"]], header=("record_id", "churned"))
    rows = parse_label_csv(text)
    assert [(r.row, r.label) for r in rows] == [(1, None), (2, None)]
    assert all("lacks observed_at" in (r.reason or "") for r in rows)


def test_outcomes_within_a_file_rejected_too_old_repeated_or_candidate() -> None:
    # GIVEN a file with a recent label, an old one, a repeat of the first record and a bad row
    recent = (NOW - timedelta(days=1)).isoformat()
    old = (NOW - timedelta(days=31)).isoformat()
    text = label_csv([["r1", "1", recent], ["r2", "0", old], ["r1", "0", recent], ["r3", "2", recent]])
    # WHEN outcomes are decided under a 30-day retention
    outcomes = file_outcomes(parse_label_csv(text), now=NOW, retention_days=30)
    # THEN each row has one, and only the first row of r1 is a join candidate (status None)
    assert [(o.row, o.record_id, o.status) for o in outcomes] == [
        (1, "r1", None),
        (2, "r2", LabelStatus.TOO_OLD),
        (3, "r1", LabelStatus.DUPLICATE),
        (4, "r3", LabelStatus.REJECTED),
    ]
    assert "row 1" in (outcomes[2].reason or "")
    # AND without retention nothing is too old
    assert file_outcomes(parse_label_csv(text), now=NOW, retention_days=0)[1].status is None


def test_an_unreadable_file_is_one_rejected_row_with_the_reason() -> None:
    [outcome] = outcomes_of(b"\x1f\x8bnot really gzip", now=NOW, retention_days=0)
    assert (outcome.row, outcome.status) == (0, LabelStatus.REJECTED)
    assert "corrupt gzip" in (outcome.reason or "")


def test_a_label_file_that_inflates_past_the_bound_is_refused_without_being_held_whole() -> None:
    # GIVEN a small gzip object that inflates to 4 MiB of zeros
    bomb = gzip.compress(b"0" * (4 * 1024 * 1024))
    assert len(bomb) < 16 * 1024
    # WHEN it is read with a bound of 1 MiB
    # THEN it is an error of the file, naming the bound
    with pytest.raises(LabelFileError, match="1,048,576 bytes once decompressed"):
        csv_text(bomb, max_bytes=1024 * 1024)
    # AND a plain file over the bound is refused too
    with pytest.raises(LabelFileError, match="larger than 10 bytes"):
        csv_text(b"record_id,churned\n", max_bytes=10)
