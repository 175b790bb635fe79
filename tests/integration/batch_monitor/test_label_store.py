"""Label files stored and joined to predictions exactly once, set-based, on SQLite and real Postgres."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select, update

from batch_monitor.labels.store import FileCounts, retry_unknown
from churn_common.database import label_files, labels, predictions
from tests.integration.batch_monitor.label_store_steps import NOW, ingesting, stored_labels

pytestmark = pytest.mark.integration

EVENT = datetime(2026, 11, 26, 6, 1, tzinfo=UTC)


def label_file(*rows: tuple[str, str, str]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["record_id", "churned", "observed_at"])
    writer.writerows(rows)
    return out.getvalue()


@pytest.fixture
def ingest(engine: Engine) -> Callable[..., FileCounts | None]:
    return ingesting(engine)


def label_statuses(engine: Engine) -> list[tuple[str, int, str | None, str]]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(labels.c.source_key, labels.c.row, labels.c.record_id, labels.c.status).order_by(labels.c.id)
        ).all()
    return [tuple(row) for row in rows]


def test_a_label_file_joins_each_record_once_and_every_row_has_an_outcome(  # type: ignore[no-untyped-def]
    engine, put_rows, ingest
) -> None:
    # GIVEN stored predictions of r1 (unlabelled) and r2 (already labelled)
    put_rows(EVENT, record="r1")
    put_rows(EVENT, record="r2")
    with engine.begin() as connection:
        connection.execute(update(predictions).where(predictions.c.record_id == "r2").values(label=0))
    recent, old = (NOW - timedelta(days=2)).isoformat(), (NOW - timedelta(days=40)).isoformat()
    text = label_file(
        ("r1", "1", recent),  # joined
        ("r2", "1", recent),  # duplicate: the prediction has a label
        ("r9", "0", recent),  # unknown: no prediction yet
        ("r1", "0", recent),  # duplicate: repeated in the file
        ("r3", "1", old),  # too old
        ("r4", "maybe", recent),  # rejected
    )

    # WHEN the file is ingested
    counts = ingest(text)

    # THEN its counts add up to its rows, one per outcome
    assert counts == FileCounts(
        key="data/labels/a.csv", version="v1", rows=6, joined=1, duplicate=2, unknown=1, too_old=1, rejected=1
    )
    # AND only the unlabelled prediction got the label; the labelled one kept its own
    assert stored_labels(engine) == {"r1": 1, "r2": 0}
    # AND every row is stored with its outcome
    assert [(row, status) for _, row, _, status in label_statuses(engine)] == [
        (1, "joined"),
        (2, "duplicate"),
        (3, "unknown"),
        (4, "duplicate"),
        (5, "too_old"),
        (6, "rejected"),
    ]
    with engine.connect() as connection:
        [stored] = connection.execute(select(label_files)).mappings().all()
    assert (stored["n_rows"], stored["joined"], stored["duplicate"], stored["unknown"]) == (6, 1, 2, 1)

    # WHEN the same version is ingested again THEN nothing changes
    assert ingest(text) is None
    assert len(label_statuses(engine)) == 6

    # WHEN r9's prediction is stored and the unknown labels are retried THEN it joins, once
    put_rows(EVENT, record="r9")
    assert retry_unknown(engine, now=NOW) == 1
    assert retry_unknown(engine, now=NOW) == 0
    assert stored_labels(engine)["r9"] == 0
    assert label_statuses(engine)[2][3] == "joined"


def test_new_content_under_the_same_key_is_ingested_and_two_waiting_labels_join_once(  # type: ignore[no-untyped-def]
    engine, put_rows, ingest
) -> None:
    # GIVEN a label for r10 that arrives before its prediction, in two versions of one key
    recent = (NOW - timedelta(days=1)).isoformat()
    first = ingest(label_file(("r10", "1", recent)), version="v1")
    second = ingest(label_file(("r10", "0", recent), ("r11", "1", recent)), version="v2")
    # THEN both versions are ingested, their labels waiting
    assert first is not None
    assert (first.rows, first.unknown) == (1, 1)
    assert second is not None
    assert (second.rows, second.unknown) == (2, 2)

    # WHEN the prediction arrives and the waiting labels are retried
    put_rows(EVENT, record="r10")
    joined = retry_unknown(engine, now=NOW)

    # THEN the earlier label joins and the later one is a duplicate; r11 still waits
    assert joined == 1
    assert stored_labels(engine) == {"r10": 1}
    assert [status for *_, status in label_statuses(engine)] == ["joined", "duplicate", "unknown"]


def test_a_label_whose_prediction_never_comes_expires_at_the_retention_horizon(  # type: ignore[no-untyped-def]
    engine, ingest
) -> None:
    # GIVEN two labels waiting for predictions that are not stored, one observed 20 days ago, one 2 days ago
    ingest(
        label_file(
            ("r20", "1", (NOW - timedelta(days=20)).isoformat()), ("r21", "0", (NOW - timedelta(days=2)).isoformat())
        )
    )
    # WHEN the waiting labels are retried with the horizon 10 days back
    joined = retry_unknown(engine, now=NOW, expire_before=NOW - timedelta(days=10))
    # THEN nothing joined, the older one is too old with its reason, the recent one still waits
    assert joined == 0
    with engine.connect() as connection:
        rows = connection.execute(
            select(labels.c.record_id, labels.c.status, labels.c.reason).order_by(labels.c.id)
        ).all()
    assert [(r.record_id, r.status) for r in rows] == [("r20", "too_old"), ("r21", "unknown")]
    assert "retention" in (rows[0].reason or "")
