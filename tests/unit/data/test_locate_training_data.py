from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from churn_common.settings import Settings
from data.churn_csv import read_churn_csv, write_churn_csv
from data.dataset import TRAINING_FILE_NAME, DataSource, locate_training_data
from data.download import uci_dataset_path

UNREACHABLE_URL = "http://127.0.0.1:9/iranian+churn+dataset.zip"


@pytest.fixture
def settings_for(tmp_path: Path) -> Callable[..., Settings]:
    """Settings with a private state dir, independent of the test process's environment."""

    def make(*, churn_data_dir: Path | None = None) -> Settings:
        return Settings(LOCAL_STATE_DIR=tmp_path / "state", CHURN_DATA_DIR=churn_data_dir)

    return make


def test_operator_folder_wins(
    settings_for: Callable[..., Settings], churn_frame: Callable[..., pd.DataFrame], tmp_path: Path
) -> None:
    # GIVEN CHURN_DATA_DIR holding the training file, and a downloaded copy as well
    folder = tmp_path / "provided"
    folder.mkdir()
    write_churn_csv(churn_frame(), folder / TRAINING_FILE_NAME, original_headers=True)
    settings = settings_for(churn_data_dir=folder)
    uci_dataset_path(settings).parent.mkdir(parents=True)
    write_churn_csv(churn_frame(), uci_dataset_path(settings), original_headers=False)
    # WHEN located THEN the operator's file is used
    assert locate_training_data(settings, url=UNREACHABLE_URL) == (folder / TRAINING_FILE_NAME, "churn_data_dir")


def test_operator_folder_without_the_file_is_an_error(settings_for: Callable[..., Settings], tmp_path: Path) -> None:
    # GIVEN CHURN_DATA_DIR set to an empty folder WHEN located THEN the error names the expected file
    with pytest.raises(FileNotFoundError, match=TRAINING_FILE_NAME):
        locate_training_data(settings_for(churn_data_dir=tmp_path), url=UNREACHABLE_URL)


def test_existing_download_is_used_without_network(
    settings_for: Callable[..., Settings], churn_frame: Callable[..., pd.DataFrame]
) -> None:
    # GIVEN a previously downloaded copy and no network
    settings = settings_for()
    uci_dataset_path(settings).parent.mkdir(parents=True)
    write_churn_csv(churn_frame(), uci_dataset_path(settings), original_headers=False)
    # WHEN located THEN the copy is used
    assert locate_training_data(settings, url=UNREACHABLE_URL) == (uci_dataset_path(settings), DataSource.UCI)


def test_downloads_when_no_copy_exists(
    settings_for: Callable[..., Settings],
    churn_frame: Callable[..., pd.DataFrame],
    csv_bytes: Callable[..., bytes],
    make_zip: Callable[..., Path],
    serve_directory: Callable[[Path], str],
) -> None:
    # GIVEN a reachable source and no local copy
    archive = make_zip({"Customer Churn.csv": csv_bytes(churn_frame(120))})
    url = f"{serve_directory(archive.parent)}/{archive.name}"
    settings = settings_for()
    # WHEN located THEN the download is stored in the state dir and used
    path, source = locate_training_data(settings, url=url)
    assert (path, source) == (uci_dataset_path(settings), "uci")
    assert len(read_churn_csv(path)) == 120


def test_offline_falls_back_to_the_bundled_reference_with_one_log_line(
    settings_for: Callable[..., Settings],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    # GIVEN no data folder, no copy, no network, and a working directory outside the repository
    monkeypatch.chdir(tmp_path)
    started = time.monotonic()
    # WHEN located
    with caplog.at_level(logging.WARNING, logger="data"):
        path, source = locate_training_data(settings_for(), url=UNREACHABLE_URL)
    # THEN the bundled synthetic reference is used, quickly, and the fallback is said once
    assert source == "synthetic"
    assert path.is_absolute()
    assert path.name == "reference.csv"
    assert len(read_churn_csv(path)) == 3000
    assert time.monotonic() - started < 5
    fallbacks = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(fallbacks) == 1
    assert "could not download" in fallbacks[0]
    assert "synthetic" in fallbacks[0]
