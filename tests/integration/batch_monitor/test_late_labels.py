"""Labels that arrive later, through the real flow with the emulator over HTTP (SQLite and Postgres): a window
scored unlabelled has coverage 0 and no realised quality; a label file dropped later joins exactly once, and the
window is evaluated again with its realised quality; files are ingested once per object version; a label that
overtakes its prediction joins when the prediction is stored; a re-evaluation e-mails no kind twice."""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import Engine, func, select

from batch_monitor.core import Window
from batch_monitor.flow import monitor_windows
from churn_common.aws import client
from churn_common.database import alerts, labels, monitoring_windows, predictions
from churn_common.settings import get_settings
from stream_scorer.model import LoadedModel
from tests.integration.batch_monitor.conftest import closed_after, outbox_subjects, scored_rows, window_at

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("prefect_server")]

LabelRows = Iterable[tuple[str, Any, str]]


def label_csv(rows: LabelRows) -> bytes:
    """A label file as its producer writes it: the contract's header, then (record_id, churned, observed_at)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["record_id", "churned", "observed_at"])
    writer.writerows(rows)
    return out.getvalue().encode()


def drop_labels(name: str, rows: LabelRows, *, gzipped: bool = False) -> None:
    body = label_csv(rows)
    settings = get_settings()
    client("s3").put_object(
        Bucket=settings.bucket, Key=f"{settings.labels_prefix}{name}", Body=gzip.compress(body) if gzipped else body
    )


@pytest.fixture
def put_unlabelled(engine: Engine, serving_model: LoadedModel) -> Callable[..., list[tuple[str, int]]]:
    """Store a generated frame's predictions without labels; returns each record id with its true label."""

    def put(frame: pd.DataFrame, *, window: Window, source: str = "test") -> list[tuple[str, int]]:
        rows = scored_rows(frame, model=serving_model, window=window, source=source)
        truth = [(row["record_id"], int(row["label"])) for row in rows]
        with engine.begin() as connection:
            connection.execute(predictions.insert(), [{**row, "label": None} for row in rows])
        return truth

    return put


def label_statuses(engine: Engine) -> dict[str, int]:
    with engine.connect() as connection:
        rows = connection.execute(select(labels.c.status, func.count()).group_by(labels.c.status)).all()
    return {status: int(n) for status, n in rows}


@pytest.fixture
def thirty_day_retention(monitor_env, env) -> None:  # type: ignore[no-untyped-def]
    """Labels observed more than 30 days before the monitor's moment are too old."""
    env(PREDICTIONS_RETENTION_DAYS="30")


@pytest.mark.usefixtures("thirty_day_retention")
def test_labels_dropped_later_join_once_and_the_window_is_evaluated_again_with_its_realised_quality(  # type: ignore[no-untyped-def]
    batch, put_unlabelled, put_rows, engine
) -> None:
    # GIVEN a window scored without labels
    window, next_window = window_at(0), window_at(1)
    truth = put_unlabelled(batch(n_rows=200, seed=90), window=window)

    # WHEN the monitor runs as it closes
    first = monitor_windows(now=closed_after(window))

    # THEN its coverage is 0 and it reports no realised quality
    [unlabelled] = first.windows
    assert (unlabelled.status, unlabelled.label_coverage, unlabelled.f1) == ("evaluated", 0.0, None)
    # AND its estimated quality stands, with no error known yet
    assert unlabelled.estimated_f1 is not None
    assert unlabelled.estimate_error is None
    assert first.labels is not None
    assert first.labels.files == []

    # WHEN the labels arrive days later in an upper-case gzip file: every record's, plus a record not scored
    # yet, a repeat, one observed before the retention period and a bad row
    moment = closed_after(next_window)
    observed = (moment - timedelta(days=3)).isoformat()
    drop_labels(
        "2026-12/LABELS.CSV.GZ",
        [
            *((record, label, observed) for record, label in truth),
            ("late-record", 1, observed),
            (truth[0][0], truth[0][1], observed),
            ("old-record", 0, (moment - timedelta(days=40)).isoformat()),
            ("bad-record", "churned", observed),
        ],
        gzipped=True,
    )
    second = monitor_windows(now=moment)

    # THEN the file is ingested once, its counts adding up to its rows
    assert second.labels is not None
    [ingested] = second.labels.files
    assert ingested.key == f"{get_settings().labels_prefix}2026-12/LABELS.CSV.GZ"
    counts = (ingested.joined, ingested.duplicate, ingested.unknown, ingested.too_old, ingested.rejected)
    assert counts == (200, 1, 1, 1, 1)
    assert sum(counts) == ingested.rows == 204
    # AND the window is evaluated again, fully covered, with its realised quality
    [relabelled] = second.windows
    assert relabelled.window_start == window.start
    assert (relabelled.label_coverage, relabelled.n_rows, relabelled.previous_n_rows) == (1.0, 200, 200)
    assert relabelled.f1 is not None
    assert relabelled.accuracy is not None
    # AND the estimate that stood before is kept beside the realised F1, with how far it was off
    assert relabelled.estimated_f1 == pytest.approx(unlabelled.estimated_f1)
    assert relabelled.estimate_error == pytest.approx(unlabelled.estimated_f1 - relabelled.f1)
    with engine.connect() as connection:
        stored = connection.execute(select(predictions.c.record_id, predictions.c.label)).all()
    assert dict(stored) == dict(truth)

    # WHEN the monitor runs again with nothing new THEN the file is not read again and nothing is evaluated
    third = monitor_windows(now=moment + timedelta(seconds=1))
    assert third.labels is not None
    assert third.labels.files == []
    assert third.windows == []
    assert label_statuses(engine) == {"joined": 200, "duplicate": 1, "unknown": 1, "too_old": 1, "rejected": 1}

    # WHEN the late record is scored (the label overtook it) and new labels are uploaded to the same key
    put_rows(next_window.start + timedelta(seconds=5), record="late-record")
    drop_labels("2026-12/LABELS.CSV.GZ", [("another-unknown", 0, observed)], gzipped=True)
    fourth = monitor_windows(now=closed_after(window_at(2)))

    # THEN the new content is ingested, and the waiting label joins its prediction
    assert fourth.labels is not None
    [again] = fourth.labels.files
    assert (again.key, again.rows, again.unknown) == (ingested.key, 1, 1)
    assert again.version != ingested.version
    assert fourth.labels.retried_joined == 1
    with engine.connect() as connection:
        late = connection.execute(select(predictions.c.label).where(predictions.c.record_id == "late-record"))
        assert late.scalar_one() == 1
    assert label_statuses(engine)["joined"] == 201


def test_labels_joining_a_window_already_alerted_for_quality_send_no_second_quality_e_mail(  # type: ignore[no-untyped-def]
    monitor_env, batch, put_window, engine
) -> None:
    # GIVEN a window whose first 120 of 200 records carry labels that contradict the model (coverage 0.6)
    window = window_at(0)
    labelled = 120

    def contradicting_first_rows(row: dict[str, Any]) -> int | None:
        return 1 - row["churn_prediction"] if row["row"] <= labelled else None

    put_window(batch(n_rows=200, seed=91), window=window, relabel=contradicting_first_rows)
    first = monitor_windows(now=closed_after(window))
    [evaluated] = first.windows
    assert evaluated.label_coverage == pytest.approx(0.6)
    assert "quality" in evaluated.alerts
    # AND with labels from the start no estimate ever stood, so its error is no alert
    assert evaluated.f1 == 0.0
    assert "estimate_error" not in evaluated.alerts
    assert sum(s.startswith("[churn-model] Low quality") for s in outbox_subjects(monitor_env.alerts_outbox_url)) == 1

    # WHEN the other 80 labels arrive, as contradicting, and the monitor runs again
    with engine.connect() as connection:
        rest = connection.execute(
            select(predictions.c.record_id, predictions.c.churn_prediction).where(predictions.c.label.is_(None))
        ).all()
    moment = closed_after(window_at(1))
    drop_labels("rest.csv", [(r.record_id, 1 - r.churn_prediction, moment.isoformat()) for r in rest])
    second = monitor_windows(now=moment)

    # THEN the window is evaluated again on all its labels, still low, and no second quality e-mail goes out
    [again] = second.windows
    assert (again.window_start, again.label_coverage, again.f1) == (window.start, 1.0, 0.0)
    assert [a for a in second.alerts_sent if a.kind in ("quality", "estimate_error")] == []
    assert not any(s.startswith("[churn-model] Low quality") for s in outbox_subjects(monitor_env.alerts_outbox_url))
    with engine.connect() as connection:
        kinds = connection.execute(select(alerts.c.kind).where(alerts.c.window_start == window.start)).scalars().all()
    assert kinds.count("quality") == 1


def test_a_window_labelled_below_the_minimum_coverage_reports_no_realised_quality(  # type: ignore[no-untyped-def]
    monitor_env, batch, put_window
) -> None:
    # GIVEN a window with 60 of its 300 records labelled (20 %: enough rows, both classes, too little coverage)
    window = window_at(0)
    put_window(
        batch(n_rows=300, seed=92),
        window=window,
        relabel=lambda row: int(row["churn_prediction"]) if row["row"] <= 60 else None,
    )
    # WHEN monitored THEN its coverage is stored and its quality is only estimated
    [evaluated] = monitor_windows(now=closed_after(window)).windows
    assert evaluated.label_coverage == pytest.approx(0.2)
    assert evaluated.f1 is None
    assert evaluated.estimated_f1 is not None


def test_labels_that_prove_the_standing_estimate_wrong_raise_one_estimate_error_alert(  # type: ignore[no-untyped-def]
    monitor_env, batch, put_unlabelled, engine
) -> None:
    # GIVEN a window scored without labels, judged on its estimate
    window = window_at(0)
    put_unlabelled(batch(n_rows=200, seed=93), window=window)
    [first] = monitor_windows(now=closed_after(window)).windows
    assert (first.f1, first.estimate_error) == (None, None)
    assert first.estimated_f1 is not None
    assert "estimate_error" not in first.alerts

    # WHEN labels arrive that contradict every decision the model made
    with engine.connect() as connection:
        decided = connection.execute(select(predictions.c.record_id, predictions.c.churn_prediction)).all()
    moment = closed_after(window_at(1))
    drop_labels("contradicting.csv", [(r.record_id, 1 - r.churn_prediction, moment.isoformat()) for r in decided])
    [again] = monitor_windows(now=moment).windows

    # THEN the realised F1 is 0, the error is the whole estimate, and the estimate-error alert is e-mailed once
    assert again.f1 == 0.0
    assert again.estimate_error == pytest.approx(first.estimated_f1)
    assert "estimate_error" in again.alerts
    subjects = outbox_subjects(monitor_env.alerts_outbox_url)
    assert sum("Quality estimate off by" in subject for subject in subjects) == 1
    # AND the window remembers its estimate stood, for every later evaluation of it
    with engine.connect() as connection:
        stood = connection.execute(select(monitoring_windows.c.estimate_stood)).scalar_one()
    assert stood is True
