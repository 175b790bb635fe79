"""Every Grafana panel's SQL on real Postgres filled by the real pipeline.

Files are dropped into the embedded stack (emulator over HTTP, local Lambda service, producer and scorer
handlers), garbage is put on the stream for the scorer to reject, and the monitor flow (real Prefect,
Evidently, MLflow) evaluates the windows and retrains once. Each panel's query is then expanded the way
Grafana expands its macros (:mod:`tests.grafana_macros`) over the dashboards' "last 30 minutes" and run:
it must return rows, with the columns the panel reads, whose values agree with what the pipeline did.
"""

from __future__ import annotations

import io
import json
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest
from rich.console import Console
from rich.progress import Progress
from sqlalchemy import Engine, func, select, text

from churn_common.aws import client, forget_clients
from churn_common.database import dispose_engine, get_engine, predictions, rejected_records
from churn_common.registry import configure_mlflow
from churn_common.settings import get_settings
from churn_common.wire import encode
from data.churn_csv import read_churn_csv, write_churn_csv
from data.synthetic import generate, strong_drift
from infra.local.aws_call_log import CallLogFile, read_call_log
from infra.local.policy_documents import LOCAL_ACCOUNT, MONITOR, PRODUCER, STREAM_SCORER
from infra.local.principals import acting_as
from tests.conftest import training_data_path
from tests.factories import customer_record
from tests.grafana_macros import TimeRange, expand_macros
from tests.iam_policy import REGION, denials, operations_by_principal
from tests.local_servers import free_port

pytestmark = pytest.mark.e2e

DASHBOARD_DIR = Path(__file__).resolve().parents[2] / "infra" / "grafana" / "dashboards" / "json"
ROWS_PER_FILE = 300
BAD_CSV_ROWS = ("1,0,30,0,100,10,1,5,7,1,1,30,10.5,0",)  # the producer rejects it to S3, not to the table


def _unknown_version() -> bytes:
    """A well-formed record of a wire version the scorer does not know."""
    fields = orjson.loads(encode(customer_record(row=1)))
    return orjson.dumps([99, *fields[1:]])


POISON_RECORDS = (b"not a customer record", _unknown_version())  # undecodable; unknown wire version
WINDOW_SECONDS = 6
SETTLE_TIMEOUT_SECONDS = 120
DASHBOARD_MINUTES = 30

# The columns each panel reads, by dashboard and title: a new panel needs an entry (and a check) here.
PANEL_COLUMNS: Mapping[str, Mapping[str, Sequence[str]]] = {
    "churn-stream.json": {
        "Current model version": ("model", "last scored"),
        "Records scored": ("time", "records scored"),
        "Predicted churn rate": ("time", "predicted churn rate"),
        "Rejected records": ("time", "rejected"),
        "Records scored per 10 s": ("time", "records scored"),
        "Predicted churn rate per 10 s": ("time", "predicted churn rate"),
        "Churn probability distribution": ("time", *(f"0.{i}" for i in range(10))),
        "End-to-end latency (scored_at - arrival_time)": ("time", "p50", "p99"),
        "Rejected records per 10 s by stage": ("time", "metric", "value"),
        "Latest rejections": ("time", "stage", "reason", "payload (first 200 chars)"),
    },
    "churn-model-monitoring.json": {
        "Drifted share (latest window)": ("time", "drifted share"),
        "F1 (latest window)": ("time", "F1"),
        "Rows (latest window)": ("time", "rows"),
        "Alerts sent": ("time", "alerts"),
        "Drifted share of columns per window": ("time", "drifted share"),
        "Column drift score per window": ("time", "metric", "value"),
        "Classification quality per window": ("time", "F1", "precision", "recall", "accuracy", "estimated F1"),
        "Alerts": ("time", "kind", "status", "subject", "window_start", "window_end", "message_id"),
        "Retraining runs": (
            "time",
            "serving version",
            "status",
            "challenger version",
            "challenger F1",
            "serving F1",
            "first window",
            "last window end",
            "reason",
        ),
        "Labels and the quality estimate per window": (
            "time",
            "label coverage",
            "realised F1",
            "estimated F1",
            "estimate error",
        ),
        "Champion vs challenger per window": (
            "time",
            "champion F1",
            "challenger F1",
            "challenger estimated F1",
            "agreement",
        ),
        "annotation Alerts": ("time", "timeend", "text", "tags"),
    },
}


@dataclass(frozen=True)
class PipelineRun:
    database_url: str
    time_range: TimeRange
    model_version: str
    rows_scored: int
    scorer_rejects: int
    windows: int
    calls: CallLogFile


def _panel_queries() -> list[tuple[str, str, str, str]]:
    """(dashboard file, panel title, format, rawSql) of every panel target and SQL annotation."""
    queries = []
    for path in sorted(DASHBOARD_DIR.glob("*.json")):
        dashboard = json.loads(path.read_text())
        for panel in dashboard["panels"]:
            for target in panel.get("targets", []):
                queries.append((path.name, panel["title"], target["format"], target["rawSql"]))
        for annotation in dashboard["annotations"]["list"]:
            if "target" in annotation:
                target = annotation["target"]
                queries.append((path.name, f"annotation {annotation['name']}", target["format"], target["rawSql"]))
    return queries


QUERIES = _panel_queries()


def _write_files(folder: Path) -> list[Path]:
    """Reference-like (with a bad row), strongly drifted, and labels 40 % wrong: one window each."""
    base = read_churn_csv(training_data_path())
    specs = {
        "reference_like.csv": {"seed": 71},
        "drifted.csv": {"seed": 72, "drift": strong_drift()},
        "degraded.csv": {"seed": 73, "label_noise": 0.4},
    }
    paths = []
    for name, spec in specs.items():
        path = write_churn_csv(generate(n_rows=ROWS_PER_FILE, base=base, **spec), folder / name, original_headers=True)
        paths.append(path)
    with paths[0].open("a") as handle:
        handle.write("\n".join(BAD_CSV_ROWS) + "\n")
    return paths


def _wait_for_rejects(engine: Engine, expected: int) -> None:
    deadline = time.monotonic() + SETTLE_TIMEOUT_SECONDS
    query = select(func.count()).select_from(rejected_records)
    while True:
        with engine.connect() as connection:
            if connection.execute(query).scalar_one() >= expected:
                return
        if time.monotonic() > deadline:
            raise TimeoutError(f"the scorer did not reject the {expected} poison records in time")
        time.sleep(0.5)


@pytest.fixture(scope="module")
def pipeline(
    postgres_server: str, prefect_server: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PipelineRun]:
    from batch_monitor.evaluation.reference import load_reference
    from batch_monitor.flow import monitor_windows
    from infra.local.demo import drop_and_wait
    from infra.local.driver import sleep_to_next_window
    from infra.local.stack import LocalStack
    from training.train import train_and_register

    state = tmp_path_factory.mktemp("grafana-pipeline")
    name = f"churn_grafana_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(postgres_server, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    database_url = f"{postgres_server.rsplit('/', 1)[0].replace('postgresql://', 'postgresql+psycopg://', 1)}/{name}"
    try:
        with pytest.MonkeyPatch.context() as patch:
            for key, value in {
                "DATABASE_URL": database_url,
                "LOCAL_STATE_DIR": str(state),
                "LOCAL_AWS_PORT": str(free_port()),
                "MLFLOW_TRACKING_URI": f"sqlite:///{state / 'mlflow' / 'mlflow.db'}",
                "MONITOR_WINDOW_SECONDS": str(WINDOW_SECONDS),
                "MONITOR_LATENESS_SECONDS": "1",
                "RETRAIN_ENABLED": "true",
                "RETRAIN_AFTER_WINDOWS": "1",
            }.items():
                patch.setenv(key, value)
            get_settings.cache_clear()
            forget_clients()
            load_reference.cache_clear()
            model = train_and_register(data_path=training_data_path())
            engine = get_engine(database_url)
            files = _write_files(state)
            with LocalStack(with_prefect=False) as stack, Progress(console=Console(file=io.StringIO())) as progress:
                for path in files:
                    sleep_to_next_window(WINDOW_SECONDS)
                    drop_and_wait(path, engine=engine, progress=progress)
                assert stack.resources is not None
                kinesis = client("kinesis")
                for i, payload in enumerate(POISON_RECORDS):
                    kinesis.put_record(StreamName=stack.resources.stream_name, Data=payload, PartitionKey=f"p{i}")
                _wait_for_rejects(engine, len(POISON_RECORDS))
                with acting_as(MONITOR):  # as the deployed worker's task role
                    summary = monitor_windows(now=datetime.now(tz=UTC) + timedelta(seconds=WINDOW_SECONDS + 2))
                call_log = stack.call_log_path
            with engine.connect() as connection:
                rows = connection.execute(select(func.count()).select_from(predictions)).scalar_one()
            yield PipelineRun(
                database_url=database_url,
                time_range=TimeRange.last(DASHBOARD_MINUTES, now=datetime.now(tz=UTC) + timedelta(seconds=1)),
                model_version=model.version,
                rows_scored=int(rows),
                scorer_rejects=len(POISON_RECORDS),
                windows=len(summary.windows),
                calls=read_call_log(call_log),
            )
    finally:
        get_settings.cache_clear()
        forget_clients()
        load_reference.cache_clear()
        configure_mlflow()  # MLflow's process-wide URI back to the session's store
        dispose_engine(database_url)
        with psycopg.connect(postgres_server, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run_panel(pipeline: PipelineRun, sql: str) -> tuple[list[str], list[dict[str, Any]]]:
    """The panel's query as Grafana sends it; its column names and rows."""
    expanded = expand_macros(sql, pipeline.time_range)
    with get_engine(pipeline.database_url).connect() as connection:
        result = connection.execute(text(expanded.replace(":", r"\:")))
        columns = list(result.keys())
        return columns, [dict(zip(columns, row, strict=True)) for row in result]


def panel(dashboard: str, title: str) -> str:
    return next(sql for file, name, _, sql in QUERIES if file == dashboard and name == title)


@pytest.mark.parametrize(("dashboard", "title", "fmt", "sql"), QUERIES, ids=[f"{d}: {t}" for d, t, _, _ in QUERIES])
def test_every_panel_returns_rows_with_the_columns_it_reads(
    pipeline: PipelineRun, dashboard: str, title: str, fmt: str, sql: str
) -> None:
    # GIVEN the tables the pipeline filled; WHEN the panel's query runs over the dashboard's time range
    columns, rows = run_panel(pipeline, sql)
    # THEN it returns rows with exactly the columns the panel shows
    assert title in PANEL_COLUMNS[dashboard], f"{dashboard}: panel {title!r} has no expectation in this test"
    assert columns == list(PANEL_COLUMNS[dashboard][title])
    assert rows, f"{dashboard}: {title!r} returned no rows"
    # AND a time series comes back in time order, with its times inside the range
    if fmt == "time_series":
        times = [row["time"] for row in rows]
        assert times == sorted(times)
        start, end = pipeline.time_range.start, pipeline.time_range.end
        for moment in times:
            value = moment if isinstance(moment, datetime) else datetime.fromtimestamp(float(moment), tz=UTC)
            assert start - timedelta(seconds=10) <= value <= end


STREAM = "churn-stream.json"
MONITORING = "churn-model-monitoring.json"


def test_records_scored_per_10_s_add_up_to_every_record_scored(pipeline: PipelineRun) -> None:
    _, rows = run_panel(pipeline, panel(STREAM, "Records scored per 10 s"))
    assert sum(row["records scored"] for row in rows) == pipeline.rows_scored == 3 * ROWS_PER_FILE
    assert all(float(row["time"]) % 10 == 0 for row in rows)
    _, stat = run_panel(pipeline, panel(STREAM, "Records scored"))
    assert sum(row["records scored"] for row in stat) == pipeline.rows_scored


def test_churn_rate_and_probability_heatmap_cover_every_record(pipeline: PipelineRun) -> None:
    _, rates = run_panel(pipeline, panel(STREAM, "Predicted churn rate per 10 s"))
    assert all(0 <= row["predicted churn rate"] <= 1 for row in rates)
    with get_engine(pipeline.database_url).connect() as connection:
        positives = connection.execute(select(func.sum(predictions.c.churn_prediction))).scalar_one()
    _, counts = run_panel(pipeline, panel(STREAM, "Records scored per 10 s"))
    by_time = {row["time"]: row["records scored"] for row in counts}
    assert sum(row["predicted churn rate"] * by_time[row["time"]] for row in rates) == pytest.approx(positives)
    _, heatmap = run_panel(pipeline, panel(STREAM, "Churn probability distribution"))
    buckets = [f"0.{i}" for i in range(10)]
    assert sum(row[b] for row in heatmap for b in buckets) == pipeline.rows_scored


def test_latency_percentiles_are_ordered_and_plausible(pipeline: PipelineRun) -> None:
    _, rows = run_panel(pipeline, panel(STREAM, "End-to-end latency (scored_at - arrival_time)"))
    for row in rows:
        assert 0 <= row["p50"] <= row["p99"] < SETTLE_TIMEOUT_SECONDS


def test_rejection_panels_show_the_scorers_rejections(pipeline: PipelineRun) -> None:
    _, per_stage = run_panel(pipeline, panel(STREAM, "Rejected records per 10 s by stage"))
    assert {row["metric"] for row in per_stage} == {"stream_scorer"}
    assert sum(row["value"] for row in per_stage) == pipeline.scorer_rejects
    _, stat = run_panel(pipeline, panel(STREAM, "Rejected records"))
    assert sum(row["rejected"] for row in stat) == pipeline.scorer_rejects
    _, latest = run_panel(pipeline, panel(STREAM, "Latest rejections"))
    assert len(latest) == pipeline.scorer_rejects
    assert all(row["reason"] for row in latest)


def test_current_model_version_names_the_serving_version(pipeline: PipelineRun) -> None:
    _, [row] = run_panel(pipeline, panel(STREAM, "Current model version"))
    assert row["model"] == f"XGBoostChurnModel v{pipeline.model_version}"


def test_monitoring_panels_show_each_window(pipeline: PipelineRun) -> None:
    assert pipeline.windows == 3
    _, rows = run_panel(pipeline, panel(MONITORING, "Rows (latest window)"))
    assert [row["rows"] for row in rows] == [ROWS_PER_FILE] * 3
    _, shares = run_panel(pipeline, panel(MONITORING, "Drifted share of columns per window"))
    assert [row["drifted share"] > 0.5 for row in shares] == [False, True, False]
    _, columns = run_panel(pipeline, panel(MONITORING, "Column drift score per window"))
    assert len(columns) == 3 * 13
    _, quality = run_panel(pipeline, panel(MONITORING, "Classification quality per window"))
    f1 = [row["F1"] for row in quality]
    assert f1[0] > 0.7 > f1[2]
    assert all(0 <= row["estimated F1"] <= 1 for row in quality)
    _, labels = run_panel(pipeline, panel(MONITORING, "Labels and the quality estimate per window"))
    assert [row["label coverage"] for row in labels] == [1.0] * 3
    assert [row["realised F1"] for row in labels] == f1
    assert [row["estimate error"] for row in labels] == pytest.approx(
        [r["estimated F1"] - r["realised F1"] for r in labels]
    )


def test_alert_and_retraining_panels(pipeline: PipelineRun) -> None:
    _, windows = run_panel(pipeline, panel(MONITORING, "Rows (latest window)"))
    _, alerts = run_panel(pipeline, panel(MONITORING, "Alerts"))
    kinds = {row["time"]: set() for row in windows}
    for row in alerts:
        kinds[row["window_start"]].add(row["kind"])
    like, drifted, degraded = (kinds[row["time"]] for row in windows)
    assert not like & {"data_drift", "quality"}, alerts
    assert "data_drift" in drifted, alerts
    assert "quality" in degraded, alerts
    _, sent = run_panel(pipeline, panel(MONITORING, "Alerts sent"))
    assert sum(row["alerts"] for row in sent) == sum(row["status"] in {"sent", "recovery"} for row in alerts)
    _, [run] = run_panel(pipeline, panel(MONITORING, "Retraining runs"))
    assert run["serving version"] == pipeline.model_version
    assert run["status"] == "kept"
    assert run["challenger version"] is not None


def test_every_aws_call_of_the_run_is_allowed_by_the_callers_deployed_policy(pipeline: PipelineRun) -> None:
    # GIVEN every AWS call the run made, by the component that made it (the emulator enforced what it can)
    made = operations_by_principal(pipeline.calls)
    # THEN the monitor and its retraining wrote their reports and published their alerts as the worker's role
    assert {"s3:PutObject", "sns:Publish"} <= made[MONITOR]
    assert {"kinesis:PutRecords", "s3:GetObject"} <= made[PRODUCER]
    assert {"kinesis:GetRecords", "sqs:SendMessage"} & made[STREAM_SCORER]
    # AND each is allowed by the exact policy Terraform renders, conditions and ARNs included
    assert denials(pipeline.calls, region=REGION, account=LOCAL_ACCOUNT) == []
