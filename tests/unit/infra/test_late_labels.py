"""The demo's labels-later file: dropped without its label column, its labels later naming the stored records."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine

from churn_common.database import dispose_engine, get_engine, predictions
from churn_common.schema import FEATURE_COLUMNS
from infra.local.late_labels import file_labels, labels_of_stored, unlabelled_copy

HEADER = "Call  Failure,Complains,Subscription  Length,Charge  Amount,Seconds of Use,Frequency of use,"
HEADER += "Frequency of SMS,Distinct Called Numbers,Age Group,Tariff Plan,Status,Age,Customer Value,Churn"
ROWS = (
    "5,0,40,0,2284,44,76,9,2,1,1,25,385.502,0",
    "7,1,35,2,6100,86,25,72,2,1,1,25,479.487,1",
    "3,0,36,0,4065,65,0,15,2,1,1,25",  # ragged: no label, the producer rejects it
    "3,0,36,0,4065,sixty,0,15,2,1,1,25,185.85,1",  # a label, but a row the producer rejects
)
OBSERVED = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


@pytest.fixture
def labelled_file(tmp_path: Path) -> Path:
    path = tmp_path / "drop.csv"
    path.write_text("\n".join([HEADER, *ROWS]) + "\n")
    return path


def read_rows(path: Path) -> list[list[str]]:
    with path.open(newline="") as handle:
        return list(csv.reader(handle))


def test_the_unlabelled_copy_keeps_every_row_but_the_label_column(labelled_file: Path, tmp_path: Path) -> None:
    # GIVEN a file with the original headers, a ragged row and a bad one WHEN copied without labels
    copy = unlabelled_copy(labelled_file, folder=tmp_path / "unlabelled")
    # THEN it has the same name and rows, the header and every full row one column shorter
    assert copy.name == labelled_file.name
    assert copy.parent == tmp_path / "unlabelled"
    original, stripped = read_rows(labelled_file), read_rows(copy)
    assert stripped[0] == original[0][:-1]
    assert "Churn" not in stripped[0]
    assert stripped[1:] == [row[:-1] if len(row) == 14 else row for row in original[1:]]


def test_file_labels_are_numbered_as_the_producer_numbers_data_rows(labelled_file: Path) -> None:
    # GIVEN/WHEN the labels of the file THEN data rows count from 1, rows without a label are left out
    assert file_labels(labelled_file) == {1: 0, 2: 1, 4: 1}


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    url = f"sqlite:///{tmp_path / 'late.db'}"
    yield get_engine(url)
    dispose_engine(url)


def test_labels_name_each_stored_record_of_the_source_once(engine: Engine, labelled_file: Path) -> None:
    # GIVEN rows 1 and 2 of the file stored (row 4 was rejected by the producer), and another source's row 1
    def stored(source: str, row: int) -> dict[str, object]:
        return {
            "event_id": f"{source}-{row}",
            "record_id": f"{source}:{row}",
            "source_id": source,
            "row": row,
            "event_time": OBSERVED,
            "arrival_time": OBSERVED,
            "scored_at": OBSERVED,
            "model_name": "m",
            "model_version": "1",
            "churn_probability": 0.2,
            "churn_prediction": 0,
            **dict.fromkeys(FEATURE_COLUMNS, 0),
        }

    with engine.begin() as connection:
        connection.execute(predictions.insert(), [stored("ours", 2), stored("ours", 1), stored("theirs", 1)])
    # WHEN the labels of our source are made
    labels = labels_of_stored(engine, source_id="ours", truth=file_labels(labelled_file), observed_at=OBSERVED)
    # THEN one per stored record of ours, in row order, with the file's label and the observation time
    assert [(x.record_id, x.churned, x.due_at) for x in labels] == [("ours:1", 0, OBSERVED), ("ours:2", 1, OBSERVED)]
