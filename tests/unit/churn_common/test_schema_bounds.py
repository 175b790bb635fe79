"""Every feature is bounded by its physical range, on both sides of the stream: an absurd value is refused
by the producer's row model and by the scorer's wire validator alike, while every real row and every row
the synthetic generator makes stays valid."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, get_args, get_type_hints

import orjson
import pandas as pd
import pytest

from churn_common.schema import FEATURE_COLUMNS, LABEL_COLUMN, CustomerFeatures
from churn_common.wire import FEATURE_SLICE, WireRecordV1, decode_batch
from data.bundled import BUNDLED_SAMPLES, SAMPLES_DIR, BundledSample, read_sample
from data.churn_csv import ORIGINAL_HEADERS
from data.synthetic import generate, strong_drift
from producer.splitter import RejectedRow, ValidRow, split_csv
from stream_scorer.validation import decode_columns
from tests.conftest import real_data_dir

INT4_MAX = 2**31 - 1  # the INTEGER columns that store the counts
TYPICAL: dict[str, Any] = dict(zip(FEATURE_COLUMNS, (8, 0, 38, 0, 4370, 71, 5, 17, 3, 1, 1, 30, 197.64), strict=True))
# Largest value each feature accepts, and the smallest above it that it refuses.
EDGES: dict[str, tuple[Any, Any]] = {
    "call_failure": (24_105_600, 24_105_601),
    "subscription_length": (1_440, 1_441),
    "seconds_of_use": (24_105_600, 24_105_601),
    "frequency_of_use": (24_105_600, 24_105_601),
    "frequency_of_sms": (24_105_600, 24_105_601),
    "distinct_called_numbers": (24_105_600, 24_105_601),
    "age": (120, 121),
    "customer_value": (1_000_000.0, 1_000_000.01),
}


def csv_of(rows: Sequence[dict[str, Any]]) -> bytes:
    header = ",".join([*FEATURE_COLUMNS, LABEL_COLUMN])
    lines = [",".join(str(row.get(c, "")) for c in (*FEATURE_COLUMNS, LABEL_COLUMN)) for row in rows]
    return "\n".join([header, *lines, ""]).encode()


def payload(row: dict[str, Any], number: int = 1) -> bytes:
    """A v1 wire record, written out by hand."""
    features = [row[c] for c in FEATURE_COLUMNS]
    return orjson.dumps([1, "0123456789ab", number, 1_764_139_800_123, *features, row.get(LABEL_COLUMN)])


def split(data: bytes) -> tuple[list[ValidRow], list[RejectedRow]]:
    items = list(split_csv([data]))
    return [i for i in items if isinstance(i, ValidRow)], [i for i in items if isinstance(i, RejectedRow)]


def wire_rejections(payloads: Sequence[bytes]) -> tuple[list[str], list[str]]:
    """Reasons of the contract's decoder and of the scorer's column-wise one."""
    return [r.reason for r in decode_batch(payloads).rejections], [
        r.reason for r in decode_columns(payloads).rejections
    ]


def test_a_customer_value_of_1e308_is_refused_on_both_sides() -> None:
    # GIVEN the row that once made a window's drift score 2.6e+301
    row = {**TYPICAL, "customer_value": 1e308}
    # WHEN it is split from a CSV file (in plain digits) and when it arrives on the stream
    _, rejected = split(csv_of([{**TYPICAL, "customer_value": "1" + "0" * 308}]))
    contract, scorer = wire_rejections([payload(row)])
    # THEN both refuse it, naming the bound
    (reason,) = rejected[0].reasons
    assert reason.startswith("customer_value: Input should be less than or equal to 1000000 (got '1000")
    assert contract == scorer == ["customer_value: Input should be less than or equal to 1000000"]


@pytest.mark.parametrize("column", list(EDGES))
def test_each_feature_accepts_its_bound_and_refuses_what_is_beyond(column: str) -> None:
    # GIVEN a row at the feature's bound and one just beyond it
    largest, beyond = EDGES[column]
    at_bound, past_bound = {**TYPICAL, column: largest}, {**TYPICAL, column: beyond}
    # WHEN split and decoded
    valid, rejected = split(csv_of([at_bound, past_bound]))
    contract, scorer = wire_rejections([payload(at_bound, 1), payload(past_bound, 2)])
    # THEN the first is accepted and the second refused, for that feature only, on both sides
    assert [r.row for r in valid] == [1]
    assert getattr(valid[0].customer, column) == largest
    assert [r.reasons[0].split(":")[0] for r in rejected] == [column]
    assert len(contract) == len(scorer) == 1
    assert contract[0].startswith(f"{column}: Input should be less than or equal to")
    assert scorer == contract


@pytest.mark.parametrize("column", [c for c in FEATURE_COLUMNS if c != "customer_value"])
def test_no_integer_feature_reaches_the_limit_of_its_column(column: str) -> None:
    # GIVEN the largest value an INTEGER column holds
    row = {**TYPICAL, column: INT4_MAX}
    # THEN no feature accepts it: every bound is physical, far below the storage limit
    contract, scorer = wire_rejections([payload(row)])
    assert len(contract) == len(scorer) == 1


def test_the_wire_and_the_row_model_use_the_same_constraint_for_each_feature() -> None:
    # GIVEN the row model's type of each feature and the wire record's type at its position
    row_types = get_type_hints(CustomerFeatures, include_extras=True)
    wire_types = get_args(WireRecordV1)[FEATURE_SLICE]
    # THEN they are the very same annotated types
    assert [row_types[c] for c in FEATURE_COLUMNS] == list(wire_types)


# ---- what must stay valid: generated rows at any setting, the bundled samples, the real dataset ----


def assert_all_valid(frame: pd.DataFrame, data: bytes) -> None:
    valid, rejected = split(data)
    assert rejected == []
    assert len(valid) == len(frame)
    records = frame.to_dict("records")
    contract, scorer = wire_rejections([payload(r, i) for i, r in enumerate(records, start=1)])
    assert contract == scorer == []


@pytest.mark.parametrize("seed", [1, 7, 563])
@pytest.mark.parametrize(
    "drift",
    [
        pytest.param(None, id="no-drift"),
        pytest.param(strong_drift(), id="strong"),
        pytest.param(strong_drift(strength=4.0), id="four-times-strong"),
        pytest.param(strong_drift(strength=-2.0), id="strong-downwards"),
        pytest.param({"customer_value": 25.0, "seconds_of_use": 25.0, "frequency_of_sms": 25.0}, id="extreme"),
    ],
)
def test_generated_rows_stay_valid(seed: int, drift: dict[str, float] | None) -> None:
    # GIVEN a generated batch, written as CSV with the dataset's original headers
    frame = generate(n_rows=1500, seed=seed, drift=drift)
    data = frame.rename(columns=dict(ORIGINAL_HEADERS)).to_csv(index=False).encode()
    # THEN every row passes the producer and the scorer
    assert_all_valid(frame, data)


def test_resampled_and_drifted_rows_stay_valid() -> None:
    # GIVEN rows resampled from a base batch, drifted hard
    base = generate(n_rows=500, seed=3)
    frame = generate(n_rows=1500, seed=4, base=base, drift=strong_drift(strength=5.0), label_noise=0.3)
    # THEN every row passes the producer and the scorer
    assert_all_valid(frame, frame.to_csv(index=False).encode())


def csv_files(folder: Path) -> list[Path]:
    files = sorted(folder.glob("*.csv"))
    assert files, f"no CSV files in {folder}"
    return files


def assert_file_valid(path: Path) -> None:
    data = path.read_bytes()
    frame = pd.read_csv(path)
    frame.columns = [c.strip().lower().replace("  ", " ").replace(" ", "_") for c in frame.columns]
    assert_all_valid(frame, data)


@pytest.mark.parametrize("sample", BUNDLED_SAMPLES, ids=lambda s: s.file_name)
def test_bundled_samples_stay_valid(sample: BundledSample) -> None:
    # GIVEN a bundled sample without the malformed rows it carries on purpose
    lines = (SAMPLES_DIR / sample.file_name).read_bytes().splitlines(keepends=True)
    data = b"".join(lines[: 1 + sample.n_rows])
    # THEN every row passes the producer and the scorer
    assert_all_valid(read_sample(sample.file_name), data)


def test_real_dataset_stays_valid() -> None:
    # GIVEN the real dataset's files (CHURN_DATA_DIR, or the shared copy next to the repository)
    folder = real_data_dir()
    if folder is None:
        pytest.skip("real churn data not found: set CHURN_DATA_DIR to the folder of customer_churn_0.csv")
    # THEN every row of every file passes the producer and the scorer
    for path in csv_files(folder):
        assert_file_valid(path)
