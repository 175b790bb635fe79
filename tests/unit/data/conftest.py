"""Fixtures for the data package: real HTTP serving, zip building, drift and model-quality measurements."""

from __future__ import annotations

import functools
import os
import threading
import zipfile
from collections.abc import Callable, Iterator, Mapping
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd
import pytest

from churn_common.schema import CATEGORICAL_COLUMNS, FEATURE_COLUMNS, LABEL_COLUMN, NUMERICAL_COLUMNS
from data.churn_csv import ORIGINAL_HEADERS
from data.dataset import TRAINING_FILE_NAME
from data.generator import generate

REPO_ROOT = Path(__file__).resolve().parents[3]
DEFAULT_REAL_DATA_DIR = REPO_ROOT.parent / "shared" / "data"
SMALL_MODEL = {"n_estimators": 50, "max_depth": 4, "learning_rate": 0.3}


def real_data_folder() -> Path:
    return Path(os.environ.get("CHURN_DATA_DIR") or DEFAULT_REAL_DATA_DIR)


@pytest.fixture
def real_data_dir() -> Path:
    """The folder holding the real dataset splits; tests needing it are skipped where it is absent."""
    folder = real_data_folder()
    if not (folder / TRAINING_FILE_NAME).is_file():
        pytest.skip(f"real churn data not found: set CHURN_DATA_DIR to a folder with {TRAINING_FILE_NAME}")
    return folder


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def serve_directory() -> Iterator[Callable[[Path], str]]:
    """Serve a folder over real HTTP on 127.0.0.1; returns the base URL."""
    servers: list[ThreadingHTTPServer] = []

    def start(directory: Path) -> str:
        server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(directory)))
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def make_zip(tmp_path: Path) -> Callable[..., Path]:
    """Build a zip archive in the test's folder from member names and their bytes."""

    def build(members: Mapping[str, bytes], *, name: str = "dataset.zip") -> Path:
        archive = tmp_path / "served" / name
        archive.parent.mkdir(exist_ok=True)
        with zipfile.ZipFile(archive, "w") as zipped:
            for member, payload in members.items():
                zipped.writestr(member, payload)
        return archive

    return build


@pytest.fixture
def csv_bytes() -> Callable[..., bytes]:
    """A frame as CSV bytes, original headers by default; any subset of columns, unlike the writer."""

    def encode(frame: pd.DataFrame, *, original_headers: bool = True) -> bytes:
        renamed = frame.rename(columns=dict(ORIGINAL_HEADERS)) if original_headers else frame
        return renamed.to_csv(index=False).encode()

    return encode


@pytest.fixture
def churn_frame() -> Callable[..., pd.DataFrame]:
    def make(n_rows: int = 200, *, seed: int = 11, **options: object) -> pd.DataFrame:
        return generate(n_rows=n_rows, seed=seed, **options)  # type: ignore[arg-type]

    return make


@pytest.fixture(scope="session")
def drift_share() -> Callable[[pd.DataFrame, pd.DataFrame], float]:
    """Share of drifted feature columns, as the monitor's Evidently preset computes it."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(
        numerical_columns=list(NUMERICAL_COLUMNS), categorical_columns=list(CATEGORICAL_COLUMNS)
    )

    def measure(reference: pd.DataFrame, current: pd.DataFrame) -> float:
        run = Report([DataDriftPreset()]).run(
            reference_data=Dataset.from_pandas(reference[list(FEATURE_COLUMNS)], data_definition=definition),
            current_data=Dataset.from_pandas(current[list(FEATURE_COLUMNS)], data_definition=definition),
        )
        counts = [m for m in run.dict()["metrics"] if m["metric_name"].startswith("DriftedColumnsCount")]
        return float(counts[0]["value"]["share"])

    return measure


@pytest.fixture(scope="session")
def fit_model() -> Callable[[pd.DataFrame], object]:
    """A small XGBoost classifier, like the training pipeline's, fitted on a labelled frame."""
    from xgboost import XGBClassifier

    def fit(frame: pd.DataFrame) -> object:
        return XGBClassifier(**SMALL_MODEL).fit(frame[list(FEATURE_COLUMNS)], frame[LABEL_COLUMN])

    return fit


@pytest.fixture(scope="session")
def quality() -> Callable[[object, pd.DataFrame], dict[str, float]]:
    from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score

    def score(model: object, frame: pd.DataFrame) -> dict[str, float]:
        predicted = model.predict(frame[list(FEATURE_COLUMNS)])  # type: ignore[attr-defined]
        actual = frame[LABEL_COLUMN]
        return {
            "f1": f1_score(actual, predicted),
            "precision": precision_score(actual, predicted, zero_division=0),
            "recall": recall_score(actual, predicted),
            "accuracy": accuracy_score(actual, predicted),
        }

    return score
