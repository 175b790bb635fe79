"""Labels that arrive after the scores, for a dropped file: the demo's stand-in for ground truth that is
only known weeks later.

The file is dropped without its label column; once its window has been judged on the estimate, the labels
the file held are dropped as a label file naming the stored records, and the monitor joins them and judges
the window again. Row numbers are the producer's (data rows from 1), so a label names exactly the record
the producer made of that row.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine, select

from churn_common.database import predictions
from churn_common.schema import LABEL_COLUMN, normalise_header
from infra.local.label_feed import HeldLabel

LABEL_VALUES: Mapping[str, int] = {"0": 0, "1": 1}


def _label_index(header: list[str]) -> int | None:
    return next((i for i, name in enumerate(header) if normalise_header(name) == LABEL_COLUMN), None)


def unlabelled_copy(path: Path, *, folder: Path) -> Path:
    """``path`` without its label column, under ``folder`` with the same name (rows too short to hold the
    label are kept as they are: the producer rejects them as it would have)."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / path.name
    with path.open(newline="", encoding="utf-8") as source, target.open("w", newline="", encoding="utf-8") as out:
        reader, writer = csv.reader(source), csv.writer(out, lineterminator="\n")
        header = next(reader)
        index = _label_index(header)
        writer.writerow(header if index is None else [*header[:index], *header[index + 1 :]])
        for row in reader:
            writer.writerow(row if index is None or index >= len(row) else [*row[:index], *row[index + 1 :]])
    return target


def file_labels(path: Path) -> dict[int, int]:
    """The label of each data row (numbered from 1) that holds a valid one."""
    with path.open(newline="", encoding="utf-8") as source:
        reader = csv.reader(source)
        index = _label_index(next(reader))
        if index is None:
            return {}
        return {
            number: LABEL_VALUES[row[index].strip()]
            for number, row in enumerate(reader, start=1)
            if index < len(row) and row[index].strip() in LABEL_VALUES
        }


def labels_of_stored(
    engine: Engine, *, source_id: str, truth: Mapping[int, int], observed_at: datetime
) -> list[HeldLabel]:
    """One label per stored record of the source whose row has a label, in row order."""
    query = select(predictions.c.record_id, predictions.c.row).where(predictions.c.source_id == source_id)
    with engine.connect() as connection:
        stored = dict(connection.execute(query).all())
    return [
        HeldLabel(record_id=record_id, churned=truth[row], due_at=observed_at)
        for record_id, row in sorted(stored.items(), key=lambda item: item[1])
        if row in truth
    ]
