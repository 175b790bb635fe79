"""Labels by customer id joined to the prediction they judge, exactly once, on SQLite and real Postgres: the
customer's last prediction scored at or before the observation."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine, select

from batch_monitor.labels.store import FileCounts, retry_unknown
from churn_common.database import labels, predictions
from tests.factories import TYPICAL_FEATURES
from tests.integration.batch_monitor.label_store_steps import NOW, ingesting, stored_labels

pytestmark = pytest.mark.integration

OBSERVED = NOW - timedelta(days=2)
HEADER = ("record_id", "customer_id", "churned", "observed_at")


def label_file(*rows: tuple[str, str, str, datetime]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    writer.writerows((record, customer, churned, moment.isoformat()) for record, customer, churned, moment in rows)
    return out.getvalue()


@pytest.fixture
def put_prediction(engine: Engine) -> Callable[..., None]:
    """A stored prediction of ``record`` for ``customer`` (or none), scored at ``scored_at``."""
    counter = iter(range(1_000_000))

    def put(record: str, *, customer: str | None, scored_at: datetime, label: int | None = None) -> None:
        n = next(counter)
        row = {
            **TYPICAL_FEATURES,
            "event_id": f"e{n}",
            "record_id": record,
            "source_id": "s",
            "row": n + 1,
            "event_time": scored_at - timedelta(seconds=1),
            "arrival_time": scored_at - timedelta(seconds=1),
            "scored_at": scored_at,
            "model_name": "XGBoostChurnModel",
            "model_version": "1",
            "churn_probability": 0.2,
            "churn_prediction": 0,
            "label": label,
            "customer_id": customer,
        }
        with engine.begin() as connection:
            connection.execute(predictions.insert(), [row])

    return put


@pytest.fixture
def ingest(engine: Engine) -> Callable[..., FileCounts | None]:
    return ingesting(engine)


def label_rows(engine: Engine) -> list[tuple[str | None, str | None, str]]:
    """(customer_id, record_id, status) of every label row, in the order stored."""
    with engine.connect() as connection:
        query = select(labels.c.customer_id, labels.c.record_id, labels.c.status).order_by(labels.c.id)
        return [(row.customer_id, row.record_id, row.status) for row in connection.execute(query)]


def test_a_customer_label_judges_the_last_prediction_scored_by_its_observation(  # type: ignore[no-untyped-def]
    engine, put_prediction, ingest
) -> None:
    # GIVEN three predictions of customer C1: two scored before the observation, one after
    put_prediction("p-early", customer="C1", scored_at=OBSERVED - timedelta(days=3))
    put_prediction("p-last", customer="C1", scored_at=OBSERVED - timedelta(hours=1))
    put_prediction("p-after", customer="C1", scored_at=OBSERVED + timedelta(hours=1))
    # AND another customer's prediction in between
    put_prediction("p-other", customer="C2", scored_at=OBSERVED - timedelta(minutes=1))

    # WHEN a label for C1 at that observation is ingested
    counts = ingest(label_file(("", "C1", "1", OBSERVED)))

    # THEN it joined the last prediction scored before the observation, and no other
    assert counts is not None
    assert (counts.rows, counts.joined) == (1, 1)
    assert stored_labels(engine) == {"p-early": None, "p-last": 1, "p-after": None, "p-other": None}
    # AND the label row says which prediction it joined
    assert label_rows(engine) == [("C1", "p-last", "joined")]


def test_a_second_label_for_the_same_prediction_is_a_duplicate_an_earlier_observation_joins_its_own(  # type: ignore[no-untyped-def]
    engine, put_prediction, ingest
) -> None:
    # GIVEN two predictions of C1 and a label that joined the later one
    put_prediction("p-1", customer="C1", scored_at=OBSERVED - timedelta(days=5))
    put_prediction("p-2", customer="C1", scored_at=OBSERVED - timedelta(days=1))
    ingest(label_file(("", "C1", "1", OBSERVED)), version="v1")

    # WHEN a file brings another label for the same observation and one observed before p-2 was scored
    counts = ingest(
        label_file(("", "C1", "0", OBSERVED), ("", "C1", "0", OBSERVED - timedelta(days=2))),
        version="v2",
    )

    # THEN the first is a duplicate of p-2 (its label kept), the second joins p-1
    assert counts is not None
    assert (counts.rows, counts.joined, counts.duplicate) == (2, 1, 1)
    assert stored_labels(engine) == {"p-1": 0, "p-2": 1}
    assert label_rows(engine) == [("C1", "p-2", "joined"), ("C1", "p-2", "duplicate"), ("C1", "p-1", "joined")]


def test_two_rows_of_one_file_for_one_prediction_join_once(engine, put_prediction, ingest) -> None:  # type: ignore[no-untyped-def]
    put_prediction("p-1", customer="C1", scored_at=OBSERVED - timedelta(hours=2))
    counts = ingest(label_file(("", "C1", "1", OBSERVED), ("", "C1", "0", OBSERVED + timedelta(minutes=5))))
    assert counts is not None
    assert (counts.joined, counts.duplicate) == (1, 1)
    assert stored_labels(engine) == {"p-1": 1}


def test_a_customer_without_an_earlier_prediction_waits_and_joins_once_it_is_stored(  # type: ignore[no-untyped-def]
    engine, put_prediction, ingest
) -> None:
    # GIVEN a prediction of C5 scored only after the observation
    put_prediction("p-after", customer="C5", scored_at=OBSERVED + timedelta(hours=1))
    # WHEN a label for C5 arrives
    counts = ingest(label_file(("", "C5", "1", OBSERVED)))
    # THEN it is unknown, bound to no prediction, and nothing was labelled
    assert counts is not None
    assert (counts.rows, counts.unknown) == (1, 1)
    assert label_rows(engine) == [("C5", None, "unknown")]
    assert retry_unknown(engine, now=NOW) == 0

    # WHEN the prediction it judges is stored (a late record) and the waiting labels are retried
    put_prediction("p-judged", customer="C5", scored_at=OBSERVED - timedelta(minutes=30))
    joined = retry_unknown(engine, now=NOW)

    # THEN it joins that prediction, once
    assert joined == 1
    assert retry_unknown(engine, now=NOW) == 0
    assert stored_labels(engine) == {"p-after": None, "p-judged": 1}
    assert label_rows(engine) == [("C5", "p-judged", "joined")]


def test_a_waiting_customer_label_expires_at_the_retention_horizon_with_its_reason(  # type: ignore[no-untyped-def]
    engine, ingest
) -> None:
    ingest(label_file(("", "C7", "1", NOW - timedelta(days=20)), ("", "C8", "0", NOW - timedelta(days=2))))
    assert retry_unknown(engine, now=NOW, expire_before=NOW - timedelta(days=10)) == 0
    with engine.connect() as connection:
        rows = connection.execute(
            select(labels.c.customer_id, labels.c.status, labels.c.reason).order_by(labels.c.id)
        ).all()
    assert [(r.customer_id, r.status) for r in rows] == [("C7", "too_old"), ("C8", "unknown")]
    assert "customer" in (rows[0].reason or "")


def test_a_row_with_both_ids_joins_by_record_id_and_a_files_counts_add_up(  # type: ignore[no-untyped-def]
    engine, put_prediction, ingest
) -> None:
    # GIVEN C1's older prediction r-old, its latest p-new, an already labelled prediction of C3
    put_prediction("r-old", customer="C1", scored_at=OBSERVED - timedelta(days=4))
    put_prediction("p-new", customer="C1", scored_at=OBSERVED - timedelta(hours=1))
    put_prediction("p-c3", customer="C3", scored_at=OBSERVED - timedelta(hours=1), label=0)
    # WHEN a file holds a row naming r-old and C1, one per outcome, and a row naming nothing
    text = label_file(
        ("r-old", "C1", "1", OBSERVED),  # joined, by record id
        ("", "C3", "1", OBSERVED),  # duplicate: its prediction has a label
        ("", "C404", "1", OBSERVED),  # unknown: no prediction of this customer
        ("", "C1", "1", NOW - timedelta(days=45)),  # too old
        ("", "", "1", OBSERVED),  # rejected: names neither
        ("", "C1", "2", OBSERVED),  # rejected: bad value
    )
    counts = ingest(text)
    # THEN the counts add up to the rows
    assert counts == FileCounts(
        key="data/labels/a.csv", version="v1", rows=6, joined=1, duplicate=1, unknown=1, too_old=1, rejected=2
    )
    assert counts.joined + counts.duplicate + counts.unknown + counts.too_old + counts.rejected == counts.rows
    # AND the record id decided the join, not the customer's latest prediction
    assert stored_labels(engine) == {"r-old": 1, "p-new": None, "p-c3": 0}
    assert [status for *_, status in label_rows(engine)] == [
        "joined",
        "duplicate",
        "unknown",
        "too_old",
        "rejected",
        "rejected",
    ]
