"""Fixtures for the monitor: a real Prefect server, the registered model and its reference, and factories
that put scored prediction rows into windows of a real database."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine

from batch_monitor.core import Window
from batch_monitor.evaluation.reference import load_reference
from churn_common.aws import client
from churn_common.database import get_engine, predictions
from churn_common.registry import PROBABILITY_COLUMN, REFERENCE_ARTIFACT_DIR, REFERENCE_FILE, TARGET_COLUMN
from churn_common.schema import FEATURE_COLUMNS, LABEL_COLUMN
from data.synthetic import generate, strong_drift
from stream_scorer.model import DECISION_THRESHOLD, LoadedModel, load_booster, resolve_alias
from tests.factories import TYPICAL_FEATURES

MODEL_NAME = "XGBoostChurnModel"
WINDOW_SECONDS = 300
LATENESS_SECONDS = 30
FIRST_WINDOW = Window(datetime(2026, 11, 26, 6, 0, tzinfo=UTC), datetime(2026, 11, 26, 6, 5, tzinfo=UTC))


def window_at(index: int) -> Window:
    """The ``index``-th five-minute window from :data:`FIRST_WINDOW`."""
    start = FIRST_WINDOW.start + timedelta(seconds=index * WINDOW_SECONDS)
    return Window(start, start + timedelta(seconds=WINDOW_SECONDS))


def closed_after(window: Window) -> datetime:
    """The first moment the monitor may evaluate ``window``."""
    return window.end + timedelta(seconds=LATENESS_SECONDS)


@pytest.fixture(scope="session")
def serving_model(registered_model) -> LoadedModel:  # type: ignore[no-untyped-def]
    return load_booster(resolve_alias(MODEL_NAME, "staging"))


@pytest.fixture(scope="session")
def base_rows(registered_model) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    """The registered version's reference as generator input (features and the label as ``churn``)."""
    reference = load_reference(MODEL_NAME, registered_model.version)
    return reference.loc[:, [*FEATURE_COLUMNS, TARGET_COLUMN]].rename(columns={TARGET_COLUMN: LABEL_COLUMN})


@pytest.fixture
def batch(base_rows: pd.DataFrame) -> Callable[..., pd.DataFrame]:
    """Generated customers: like the reference, or strongly drifted; labelled unless told otherwise."""

    def make(*, n_rows: int, seed: int, drifted: bool = False, with_label: bool = True) -> pd.DataFrame:
        drift = strong_drift() if drifted else None
        return generate(n_rows=n_rows, seed=seed, drift=drift, base=base_rows, with_label=with_label)

    return make


def scored_rows(
    frame: pd.DataFrame, *, model: LoadedModel, window: Window, version: str | None = None, source: str = "test"
) -> list[dict[str, Any]]:
    """Prediction rows as the scorer writes them, event times spread over the window."""
    features = frame.loc[:, list(FEATURE_COLUMNS)]
    probabilities = model.predict_proba(features.to_numpy(dtype=np.float32))
    step = timedelta(seconds=window.seconds) / max(len(frame), 1)
    labels = frame[LABEL_COLUMN] if LABEL_COLUMN in frame else pd.Series([None] * len(frame))
    scored_at = window.end
    rows = []
    for i, (values, probability, label) in enumerate(
        zip(features.to_dict("records"), probabilities.tolist(), labels.tolist(), strict=True)
    ):
        rows.append(
            {
                **values,
                "event_id": f"{source}:{window.label}:{version}:{i}",
                "record_id": f"{source}:{window.label}:{i}",
                "source_id": source,
                "row": i + 1,
                "event_time": window.start + i * step,
                "arrival_time": window.start + i * step,
                "scored_at": scored_at,
                "model_name": MODEL_NAME,
                "model_version": version or model.version,
                PROBABILITY_COLUMN: probability,
                "churn_prediction": int(probability >= DECISION_THRESHOLD),
                "label": None if label is None or pd.isna(label) else int(label),
            }
        )
    return rows


@pytest.fixture
def monitor_env(env, aws, database_url: str, registered_model):  # type: ignore[no-untyped-def]
    """The flow's environment: this test's database, the emulator's resources, five-minute windows."""
    env(
        DATABASE_URL=database_url,
        MONITOR_WINDOW_SECONDS=str(WINDOW_SECONDS),
        MONITOR_LATENESS_SECONDS=str(LATENESS_SECONDS),
        MONITOR_MIN_ROWS="50",
    )
    return aws


@pytest.fixture
def engine(database_url: str) -> Engine:
    return get_engine(database_url)


@pytest.fixture
def put_rows(engine: Engine) -> Callable[..., None]:
    """Insert predictions at the given event times (features are irrelevant to window arithmetic)."""
    counter = iter(range(1_000_000))

    def put(*times: datetime, version: str = "1", model: str = MODEL_NAME, record: str | None = None) -> None:
        rows = []
        for moment in times:
            n = next(counter)
            rows.append(
                {
                    **TYPICAL_FEATURES,
                    "event_id": f"e{n}",
                    "record_id": record or f"r{n}",
                    "source_id": "s",
                    "row": n + 1,
                    "event_time": moment,
                    "arrival_time": moment,
                    "scored_at": moment + timedelta(seconds=n),
                    "model_name": model,
                    "model_version": version,
                    "churn_probability": 0.2,
                    "churn_prediction": 0,
                    "label": None,
                }
            )
        with engine.begin() as connection:
            connection.execute(predictions.insert(), rows)

    return put


@pytest.fixture
def put_window(engine: Engine, serving_model: LoadedModel) -> Callable[..., int]:
    """Insert a generated or given frame as the scored predictions of ``window``; returns the row count."""

    def put(frame: pd.DataFrame, *, window: Window, version: str | None = None, relabel: Any = None) -> int:
        rows = scored_rows(frame, model=serving_model, window=window, version=version)
        if relabel is not None:
            rows = [{**row, "label": relabel(row)} for row in rows]
        with engine.begin() as connection:
            connection.execute(predictions.insert(), rows)
        return len(rows)

    return put


@pytest.fixture
def put_stream(engine: Engine, serving_model: LoadedModel, base_rows: pd.DataFrame) -> Callable[..., int]:
    """Insert generated customers as predictions scored one by one across ``window`` (each a little after its
    event time), unlabelled unless told otherwise; returns the row count."""

    def put(
        *, window: Window, n_rows: int, seed: int, drift: dict[str, float] | None = None, with_label: bool = False
    ) -> int:
        frame = generate(n_rows=n_rows, seed=seed, base=base_rows, drift=drift, with_label=with_label)
        rows = [
            {**row, "scored_at": row["event_time"] + timedelta(milliseconds=5)}
            for row in scored_rows(frame, model=serving_model, window=window)
        ]
        with engine.begin() as connection:
            connection.execute(predictions.insert(), rows)
        return len(rows)

    return put


def outbox_subjects(outbox_url: str, *, wait_seconds: int = 1) -> list[str]:
    """Drain the SNS -> SQS outbox; each message body is the SNS envelope."""
    return [subject for subject, _ in outbox_messages(outbox_url, wait_seconds=wait_seconds)]


def outbox_messages(outbox_url: str, *, wait_seconds: int = 1) -> list[tuple[str, str]]:
    """Drain the SNS -> SQS outbox: the subject and text of each e-mail, in the order received."""
    sqs = client("sqs")
    received = []
    while messages := sqs.receive_message(
        QueueUrl=outbox_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait_seconds
    ).get("Messages"):
        for message in messages:
            envelope = json.loads(message["Body"])
            received.append((envelope["Subject"], envelope["Message"]))
            sqs.delete_message(QueueUrl=outbox_url, ReceiptHandle=message["ReceiptHandle"])
    return received


@pytest.fixture(scope="session")
def register_reference_version(registered_model) -> Callable[[pd.DataFrame], str]:  # type: ignore[no-untyped-def]
    """Register another version of the model whose training run logged ``reference`` (no model needed)."""
    import mlflow
    from mlflow import MlflowClient

    from churn_common.registry import ensure_experiment

    def register(reference: pd.DataFrame) -> str:
        experiment_id = ensure_experiment()
        with mlflow.start_run(experiment_id=experiment_id) as run, tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / REFERENCE_FILE
            reference.to_parquet(path, index=False)
            mlflow.log_artifact(str(path), artifact_path=REFERENCE_ARTIFACT_DIR)
        version = MlflowClient().create_model_version(
            MODEL_NAME, source=f"runs:/{run.info.run_id}/{REFERENCE_ARTIFACT_DIR}", run_id=run.info.run_id
        )
        return str(version.version)

    return register
