"""Sample keys: repeatable, uniform, and unrelated to the file and row a record came from."""

from __future__ import annotations

import numpy as np
import pytest

from batch_monitor.window_data.sample_keys import KEY_SPACE, key_threshold, sample_key, sqlite_sample_key


def kept(record_ids: list[str], fraction: float) -> np.ndarray:
    threshold = key_threshold(fraction)
    return np.array([sqlite_sample_key(r) < threshold for r in record_ids])


def test_a_record_always_gets_the_same_key_in_the_key_space() -> None:
    keys = [sqlite_sample_key(f"3f2a9c0d11b7:{row}") for row in range(1, 1001)]
    assert keys == [sqlite_sample_key(f"3f2a9c0d11b7:{row}") for row in range(1, 1001)]
    assert all(0 <= key < KEY_SPACE for key in keys)
    assert len(set(keys)) == len(keys)


@pytest.mark.parametrize("fraction", [0.01, 0.1, 0.5])
def test_the_kept_share_is_the_fraction_in_big_files_and_in_one_record_files(fraction: float) -> None:
    # GIVEN 100,000 records from 20 files of 5,000 rows, and 100,000 records from files of one row each
    big_files = [f"{f:012x}:{row}" for f in range(20) for row in range(1, 5001)]
    single_rows = [f"{f * 7919:012x}:1" for f in range(100_000)]
    for record_ids in (big_files, single_rows):
        # WHEN sampled THEN the kept share is the fraction to within four binomial standard errors
        share = kept(record_ids, fraction).mean()
        assert abs(share - fraction) <= 4 * np.sqrt(fraction * (1 - fraction) / len(record_ids))


def test_kept_rows_show_no_pattern_in_the_row_number() -> None:
    # GIVEN 200 files of 1,000 rows sampled at 10%
    record_ids = [f"{f:012x}:{row}" for f in range(200) for row in range(1, 1001)]
    rows = np.array([int(r.rsplit(":", 1)[1]) for r in record_ids])
    taken = kept(record_ids, 0.1)
    # THEN every last digit and every tenth of a file is kept at about the same rate
    for groups in (rows % 10, (rows - 1) // 100):
        shares = [taken[groups == g].mean() for g in range(10)]
        assert max(shares) - min(shares) < 0.02, shares


def test_thresholds_cover_the_key_space() -> None:
    assert key_threshold(1.0) == KEY_SPACE
    assert key_threshold(0.25) == KEY_SPACE // 4
    for fraction in (0.0, -0.1, 1.5):
        with pytest.raises(ValueError, match="sample fraction"):
            key_threshold(fraction)


def test_an_unknown_dialect_has_no_sample_key() -> None:
    with pytest.raises(NotImplementedError, match="mysql"):
        sample_key("mysql")
