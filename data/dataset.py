"""Reading and writing the dataset's CSV format, and choosing which file the model is trained on.

Training must work in three situations: real data provided by the operator, the original dataset
downloadable from its source, or neither (offline), where the bundled synthetic reference is used.
"""

from __future__ import annotations

import logging
from enum import StrEnum
from pathlib import Path

from churn_common.settings import Settings
from data.bundled import REFERENCE_SAMPLE_PATH
from data.churn_csv import ORIGINAL_HEADERS, read_churn_csv, write_churn_csv
from data.download import UCI_DATASET_URL, DownloadError, download_dataset, uci_dataset_path

__all__ = [
    "LOCATE_TIMEOUT_SECONDS",
    "ORIGINAL_HEADERS",
    "TRAINING_FILE_NAME",
    "DataSource",
    "locate_training_data",
    "read_churn_csv",
    "write_churn_csv",
]

TRAINING_FILE_NAME = "customer_churn_0.csv"
# Short, so an offline start falls back at once instead of hanging.
LOCATE_TIMEOUT_SECONDS = 5.0

logger = logging.getLogger(__name__)


class DataSource(StrEnum):
    CHURN_DATA_DIR = "churn_data_dir"
    UCI = "uci"
    SYNTHETIC = "synthetic"


def locate_training_data(
    settings: Settings, *, url: str = UCI_DATASET_URL, timeout: float = LOCATE_TIMEOUT_SECONDS
) -> tuple[Path, str]:
    """The training file and where it came from, which the training run records with the model.

    An operator-provided folder wins and must hold the file; otherwise the downloaded original dataset
    (fetched now if absent); otherwise the bundled synthetic reference. Only an unreachable source falls
    back: a source whose file no longer matches the schema raises, since training on it would be wrong.
    """
    if settings.churn_data_dir is not None:
        provided = settings.churn_data_dir / TRAINING_FILE_NAME
        if not provided.is_file():
            raise FileNotFoundError(f"CHURN_DATA_DIR is set but {provided} does not exist")
        return provided, DataSource.CHURN_DATA_DIR
    downloaded = uci_dataset_path(settings)
    if downloaded.is_file():
        return downloaded, DataSource.UCI
    try:
        result = download_dataset(url=url, destination=downloaded, timeout=timeout)
    except DownloadError as exc:
        logger.warning("%s; training on the bundled synthetic data %s instead", exc, REFERENCE_SAMPLE_PATH)
        return REFERENCE_SAMPLE_PATH, DataSource.SYNTHETIC
    return result.path, DataSource.UCI
