"""The one configuration surface: environment variables with documented defaults.

Every component reads its configuration through :func:`get_settings`, so the local stack and AWS
differ only in the values of these variables (mostly endpoints).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_STATE_DIR = Path(".local")
DEFAULT_REGION = "us-east-1"
DEFAULT_BUCKET = "churn-pipeline-data"
DEFAULT_STREAM = "customer-records"
DEFAULT_FILE_DROPS_QUEUE = "file-drops"
DEFAULT_ALERT_TOPIC = "churn-model-alerts"
DEFAULT_MODEL_NAME = "XGBoostChurnModel"
DEFAULT_MODEL_ALIAS = "staging"
# Labelled live windows a challenger must win before it serves; 0: the holdout comparison promotes directly.
DEFAULT_PROMOTION_LIVE_WINDOWS = 2
EVIDENTLY_UI_HOST = "127.0.0.1"
# How far the estimated F1 may sit from the realised one before the estimate itself is alerted on.
DEFAULT_MAX_ESTIMATE_ERROR = 0.15


class Settings(BaseSettings):
    """Environment variables (names are the upper-case field names unless an alias is given)."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    local_state_dir: Path = Field(DEFAULT_STATE_DIR, alias="LOCAL_STATE_DIR")
    aws_region: str = Field(DEFAULT_REGION, alias="AWS_DEFAULT_REGION")
    aws_endpoint_url: str | None = Field(None, alias="AWS_ENDPOINT_URL")

    bucket: str = Field(DEFAULT_BUCKET, alias="CHURN_BUCKET")
    input_prefix: str = Field("data/input/", alias="INPUT_PREFIX")
    rejected_prefix: str = Field("data/rejected/", alias="REJECTED_PREFIX")
    manifest_prefix: str = Field("data/manifests/", alias="MANIFEST_PREFIX")
    processed_prefix: str = Field("data/processed/", alias="PROCESSED_PREFIX")
    errored_prefix: str = Field("data/errored/", alias="ERRORED_PREFIX")
    reports_prefix: str = Field("reports/", alias="REPORTS_PREFIX")
    labels_prefix: str = Field("data/labels/", alias="LABELS_PREFIX")
    stream_name: str = Field(DEFAULT_STREAM, alias="KINESIS_STREAM")
    file_drops_queue: str = Field(DEFAULT_FILE_DROPS_QUEUE, alias="FILE_DROPS_QUEUE")
    producer_handoff_seconds: float = Field(60.0, alias="PRODUCER_HANDOFF_SECONDS", ge=0)
    alert_topic: str = Field(DEFAULT_ALERT_TOPIC, alias="ALERT_TOPIC")
    alert_topic_arn: str | None = Field(None, alias="ALERT_TOPIC_ARN")

    database_url: str | None = Field(None, alias="DATABASE_URL")
    database_secret_arn: str | None = Field(None, alias="DATABASE_SECRET_ARN")
    mlflow_tracking_uri: str | None = Field(None, alias="MLFLOW_TRACKING_URI")
    # MLflow's own client reads these two from the environment as well (churn_common/mlflow_credentials.py).
    mlflow_tracking_username: str | None = Field(None, alias="MLFLOW_TRACKING_USERNAME")
    mlflow_tracking_password: SecretStr | None = Field(None, alias="MLFLOW_TRACKING_PASSWORD")
    mlflow_credentials_secret_arn: str | None = Field(None, alias="MLFLOW_CREDENTIALS_SECRET_ARN")
    model_name: str = Field(DEFAULT_MODEL_NAME, alias="MODEL_NAME")
    model_alias: str = Field(DEFAULT_MODEL_ALIAS, alias="MODEL_ALIAS")
    model_refresh_seconds: float = Field(60.0, alias="MODEL_REFRESH_SECONDS")
    churn_data_dir: Path | None = Field(None, alias="CHURN_DATA_DIR")
    tuning_trials: int = Field(20, alias="TUNING_TRIALS", ge=0)
    tuning_timeout_seconds: float = Field(300.0, alias="TUNING_TIMEOUT_SECONDS", gt=0)

    window_seconds: int = Field(300, alias="MONITOR_WINDOW_SECONDS", ge=1)
    window_lateness_seconds: float = Field(30.0, alias="MONITOR_LATENESS_SECONDS", ge=0)
    window_retry_seconds: float = Field(3600.0, alias="MONITOR_RETRY_SECONDS", ge=0)
    predictions_retention_days: float = Field(0.0, alias="PREDICTIONS_RETENTION_DAYS", ge=0)
    window_min_rows: int = Field(50, alias="MONITOR_MIN_ROWS", ge=1)
    # Realised quality needs this share of a window's records labelled (besides MONITOR_MIN_ROWS of both classes).
    min_label_coverage: float = Field(0.5, alias="MIN_LABEL_COVERAGE", ge=0, le=1)
    drift_share_threshold: float = Field(0.5, alias="DRIFT_SHARE_THRESHOLD")
    min_f1: float = Field(0.70, alias="MIN_F1")
    min_precision: float = Field(0.70, alias="MIN_PRECISION")
    min_recall: float = Field(0.70, alias="MIN_RECALL")
    min_accuracy: float = Field(0.70, alias="MIN_ACCURACY")
    max_estimate_error: float = Field(DEFAULT_MAX_ESTIMATE_ERROR, alias="MAX_ESTIMATE_ERROR", gt=0)
    alert_cooldown_seconds: float = Field(1800.0, alias="ALERT_COOLDOWN_SECONDS", ge=0)
    # Unset locally (no Grafana there): alert e-mails then link the Evidently UI instead.
    grafana_url: str | None = Field(None, alias="GRAFANA_URL")

    retrain_enabled: bool = Field(False, alias="RETRAIN_ENABLED")
    retrain_after_windows: int = Field(3, alias="RETRAIN_AFTER_WINDOWS", ge=1)
    retrain_min_rows: int = Field(200, alias="RETRAIN_MIN_ROWS", ge=8)
    challenger_alias: str = Field("challenger", alias="CHALLENGER_ALIAS")
    promotion_live_windows: int = Field(DEFAULT_PROMOTION_LIVE_WINDOWS, alias="PROMOTION_LIVE_WINDOWS", ge=0)
    evidently_workspace: Path | None = Field(None, alias="EVIDENTLY_WORKSPACE")
    # Off where nobody serves the workspace (a container's disk on AWS): writing it there is work for nothing.
    evidently_workspace_enabled: bool = Field(True, alias="EVIDENTLY_WORKSPACE_ENABLED")
    evidently_project: str = Field("churn-monitoring", alias="EVIDENTLY_PROJECT")
    evidently_ui_port: int = Field(8000, alias="EVIDENTLY_UI_PORT")

    local_aws_port: int = Field(4566, alias="LOCAL_AWS_PORT")
    local_prefect_port: int = Field(4200, alias="LOCAL_PREFECT_PORT")
    local_producer_timeout_seconds: float | None = Field(None, alias="LOCAL_PRODUCER_TIMEOUT_SECONDS", gt=0)
    local_iam_enforced: bool = Field(True, alias="LOCAL_IAM_ENFORCED")
    monitor_schedule_seconds: float | None = Field(None, alias="MONITOR_SCHEDULE_SECONDS")

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.local_state_dir / 'churn.db'}"

    @property
    def resolved_mlflow_uri(self) -> str:
        return self.mlflow_tracking_uri or f"sqlite:///{self.local_state_dir / 'mlflow' / 'mlflow.db'}"

    @property
    def resolved_evidently_workspace(self) -> Path:
        return self.evidently_workspace or self.local_state_dir / "evidently"

    @property
    def evidently_ui_url(self) -> str:
        """Where ``make evidently-ui`` serves the workspace: on the loopback interface only."""
        return f"http://{EVIDENTLY_UI_HOST}:{self.evidently_ui_port}"

    @property
    def mlflow_artifact_root(self) -> Path:
        return (self.local_state_dir / "mlflow" / "artifacts").resolve()


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings are read once per process; tests call ``get_settings.cache_clear()`` after changing env."""
    return Settings()


@contextmanager
def environment_overrides(values: Mapping[str, str], *, keep_existing: bool = False) -> Iterator[None]:
    """Set environment variables for a block, then put back what was there; settings are re-read both
    times. ``keep_existing`` only fills variables that are not set (defaults a caller may override)."""
    saved = {key: os.environ.get(key) for key in values}
    for key, value in values.items():
        if not (keep_existing and key in os.environ):
            os.environ[key] = value
    get_settings.cache_clear()
    try:
        yield
    finally:
        for key, previous in saved.items():
            if previous is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = previous
        get_settings.cache_clear()
