"""Labels by customer id through the real flow with the emulator over HTTP (SQLite and Postgres): customers
scored in two windows, a label file naming the customers with an observation between the two scores; each label
joins the earlier window's prediction, which is evaluated again with its realised quality, and the later window
stays unlabelled."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import timedelta

import pytest
from sqlalchemy import Engine, func, select

from batch_monitor.flow import monitor_windows
from churn_common.aws import client
from churn_common.database import labels, predictions
from churn_common.settings import get_settings
from stream_scorer.model import LoadedModel
from tests.integration.batch_monitor.conftest import closed_after, scored_rows, window_at

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("prefect_server")]

CUSTOMERS = 200


def drop_customer_labels(name: str, rows: Iterable[tuple[str, int, str]]) -> None:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["customer_id", "churned", "observed_at"])
    writer.writerows(rows)
    settings = get_settings()
    client("s3").put_object(Bucket=settings.bucket, Key=f"{settings.labels_prefix}{name}", Body=out.getvalue().encode())


def test_customer_labels_join_the_prediction_scored_before_the_observation_and_its_window_is_re_evaluated(  # type: ignore[no-untyped-def]
    monitor_env, batch, engine: Engine, serving_model: LoadedModel
) -> None:
    # GIVEN the same customers scored, unlabelled, in two consecutive windows
    first, second = window_at(0), window_at(1)
    truth: dict[str, int] = {}
    for index, window in enumerate((first, second)):
        rows = scored_rows(
            batch(n_rows=CUSTOMERS, seed=120 + index), model=serving_model, window=window, source=f"w{index}"
        )
        for number, row in enumerate(rows, start=1):
            row["customer_id"] = f"C{number:04d}"
            if index == 0:
                truth[row["customer_id"]] = int(row["label"])
        with engine.begin() as connection:
            connection.execute(predictions.insert(), [{**row, "label": None} for row in rows])
    # AND the first window evaluated without labels
    [unlabelled] = monitor_windows(now=closed_after(first)).windows
    assert (unlabelled.window_start, unlabelled.label_coverage, unlabelled.f1) == (first.start, 0.0, None)

    # WHEN each customer's outcome arrives, observed after the first scores and before the second
    between = first.end + timedelta(minutes=2)
    assert between < second.end
    observed = between.isoformat()
    drop_customer_labels("customers.csv", ((customer, label, observed) for customer, label in truth.items()))
    run = monitor_windows(now=closed_after(second))

    # THEN every label joined, once
    assert run.labels is not None
    [ingested] = run.labels.files
    assert (ingested.rows, ingested.joined) == (CUSTOMERS, CUSTOMERS)
    # AND each joined the first window's prediction of its customer, never the second's
    with engine.connect() as connection:
        labelled = connection.execute(
            select(predictions.c.customer_id, predictions.c.source_id, predictions.c.label).where(
                predictions.c.label.is_not(None)
            )
        ).all()
        bound = connection.execute(select(func.count()).where(labels.c.record_id.like("w0:%"))).scalar_one()
    assert {row.source_id for row in labelled} == {"w0"}
    assert {row.customer_id: row.label for row in labelled} == truth
    assert bound == CUSTOMERS
    # AND the first window is evaluated again, fully covered, the second evaluated without labels
    by_start = {result.window_start: result for result in run.windows}
    assert (by_start[first.start].label_coverage, by_start[first.start].previous_n_rows) == (1.0, CUSTOMERS)
    assert by_start[first.start].f1 is not None
    assert (by_start[second.start].label_coverage, by_start[second.start].f1) == (0.0, None)
