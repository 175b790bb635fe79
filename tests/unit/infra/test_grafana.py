"""The Grafana provisioning: data source, dashboard provider, and dashboards whose SQL fits the schema.

Every query is expanded the way Grafana's Postgres data source expands its macros, checked against
the tables of ``churn_common.database.metadata`` and, where a Postgres server is reachable, executed
on seeded tables.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from churn_common.database import metadata
from tests.grafana_macros import MacroError, TimeRange, expand_macros

REPO_ROOT = Path(__file__).resolve().parents[3]
GRAFANA_DIR = REPO_ROOT / "infra" / "grafana"
DASHBOARD_DIR = GRAFANA_DIR / "dashboards" / "json"
DASHBOARD_FILES = sorted(DASHBOARD_DIR.glob("*.json"))
GRAFANA_DOCKERFILE = REPO_ROOT / "infra" / "docker" / "grafana.Dockerfile"
DATASOURCE_UID = "churn-postgres"
DATASOURCE_TYPES = {"grafana-postgresql-datasource", "postgres"}

TABLE_COLUMNS = {name: {column.name for column in table.columns} for name, table in metadata.tables.items()}

SQL_WORDS = {
    "select", "from", "where", "group", "by", "order", "asc", "desc", "limit", "offset", "and", "or", "not",
    "null", "is", "as", "between", "filter", "within", "epoch", "in", "case", "when", "then", "else", "end",
    "distinct", "on", "true", "false", "interval", "at", "time", "zone", "having", "join", "left", "inner",
    "outer", "using", "nulls", "first", "last",
}  # fmt: skip


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def _panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])  # panels inside collapsed rows


def _queries(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(where, rawSql) of every panel target and every SQL annotation."""
    for panel in _panels(dashboard):
        for target in panel.get("targets", []):
            yield f"panel {panel['title']!r} {target['refId']}", target["rawSql"]
    for annotation in dashboard["annotations"]["list"]:
        if "target" in annotation:
            yield f"annotation {annotation['name']!r}", annotation["target"]["rawSql"]


def _all_queries() -> list[tuple[str, str]]:
    return [(f"{path.name}: {where}", sql) for path in DASHBOARD_FILES for where, sql in _queries(_load(path))]


def _without_extract_from(sql: str) -> str:
    """``extract(epoch from col)`` -> ``extract(col)``: that FROM names no table."""
    return re.sub(r"\bextract\(\s*\w+\s+from\s+", "extract(", sql, flags=re.IGNORECASE)


def referenced_tables(sql: str) -> set[str]:
    sql = _without_extract_from(sql)
    return {m.group(2) for m in re.finditer(r'\b(?:FROM|JOIN)\s+("?)([A-Za-z_]\w*)\1', sql, re.IGNORECASE)}


def referenced_columns(sql: str) -> set[str]:
    """Identifiers that must be columns: what remains after literals, aliases, functions, casts, keywords."""
    text = re.sub(r"'(?:[^']|'')*'", " ", _without_extract_from(sql))  # string literals
    text = re.sub(r'\bAS\s+(?:"[^"]*"|\w+)', " ", text, flags=re.IGNORECASE)  # output aliases
    text = re.sub(r"::\w+", " ", text)  # casts
    text = re.sub(r'\b(?:FROM|JOIN)\s+"?\w+"?', " ", text, flags=re.IGNORECASE)  # table names
    columns = set(re.findall(r'"([^"]+)"', text))
    text = re.sub(r'"[^"]*"', " ", text)
    for word in re.findall(r"\b([A-Za-z_]\w*)\b(?!\s*\()", text):
        if word.lower() not in SQL_WORDS:
            columns.add(word)
    return columns


# ---------------------------------------------------------------------------------------------------
# Provisioning files
# ---------------------------------------------------------------------------------------------------


def test_datasource_takes_every_connection_setting_from_the_environment() -> None:
    config = yaml.safe_load((GRAFANA_DIR / "datasources" / "postgres.yaml").read_text())
    (datasource,) = config["datasources"]
    assert datasource["uid"] == DATASOURCE_UID
    assert datasource["type"] in DATASOURCE_TYPES
    assert datasource["secureJsonData"]["password"] == "${POSTGRES_PASSWORD}"
    for value in (datasource["url"], datasource["user"], datasource["jsonData"]["database"]):
        assert re.fullmatch(r"(\$\{[A-Z_]+\}:?)+", value), value


def test_dashboard_provider_reads_the_folder_the_image_fills() -> None:
    config = yaml.safe_load((GRAFANA_DIR / "dashboards" / "dashboards.yaml").read_text())
    (provider,) = config["providers"]
    path = provider["options"]["path"].rstrip("/")
    dockerfile = GRAFANA_DOCKERFILE.read_text()
    assert re.search(rf"^COPY infra/grafana/dashboards/json/ {re.escape(path)}/?$", dockerfile, re.MULTILINE)
    assert re.search(r"^COPY infra/grafana/datasources/ /etc/grafana/provisioning/datasources/?$", dockerfile, re.M)


# ---------------------------------------------------------------------------------------------------
# Dashboards
# ---------------------------------------------------------------------------------------------------


def test_the_two_dashboards_exist() -> None:
    titles = {_load(path)["title"] for path in DASHBOARD_FILES}
    assert titles == {"Churn stream (near real time)", "Churn model monitoring"}


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=lambda p: p.name)
def test_dashboard_settings(path: Path) -> None:
    dashboard = _load(path)
    assert dashboard["schemaVersion"] >= 39
    assert dashboard["refresh"] == "5s"
    assert dashboard["time"] == {"from": "now-30m", "to": "now"}
    assert 0 < len(dashboard["uid"]) <= 40
    assert dashboard.get("id") is None


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=lambda p: p.name)
def test_panels_have_unique_ids_a_datasource_and_sql_targets(path: Path) -> None:
    panels = [panel for panel in _panels(_load(path)) if panel["type"] != "row"]
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids)), f"duplicate panel ids in {path.name}: {ids}"
    for panel in panels:
        assert panel["datasource"]["uid"] == DATASOURCE_UID, panel["title"]
        assert panel["datasource"]["type"] in DATASOURCE_TYPES, panel["title"]
        assert panel["targets"], f"{panel['title']} has no query"
        for target in panel["targets"]:
            assert target["rawQuery"] is True
            assert target["rawSql"].strip(), panel["title"]
            assert target.get("datasource", panel["datasource"])["uid"] == DATASOURCE_UID


def test_stream_dashboard_has_the_required_panels() -> None:
    dashboard = _load(DASHBOARD_DIR / "churn-stream.json")
    panels = {panel["title"]: panel for panel in _panels(dashboard)}
    sql = {title: panel["targets"][0]["rawSql"] for title, panel in panels.items()}
    assert "$__timeGroupAlias(scored_at, 10s" in sql["Records scored per 10 s"]
    assert "churn_prediction" in sql["Predicted churn rate per 10 s"]
    assert panels["Churn probability distribution"]["type"] == "heatmap"
    assert "churn_probability" in sql["Churn probability distribution"]
    latency = sql["End-to-end latency (scored_at - arrival_time)"]
    assert "scored_at - arrival_time" in latency
    assert "percentile_cont(0.5)" in latency
    assert "percentile_cont(0.99)" in latency
    assert "rejected_records" in sql["Rejected records"]
    assert "model_version" in sql["Current model version"]


def test_monitoring_dashboard_has_the_required_panels() -> None:
    dashboard = _load(DASHBOARD_DIR / "churn-model-monitoring.json")
    panels = {panel["title"]: panel for panel in _panels(dashboard)}
    assert "drift_share" in panels["Drifted share of columns per window"]["targets"][0]["rawSql"]
    column_drift = panels["Column drift score per window"]["targets"][0]["rawSql"]
    assert "metric = 'column_drift'" in column_drift
    assert '"column" AS "metric"' in column_drift
    quality = panels["Classification quality per window"]
    for metric in ("f1", '"precision"', "recall", "accuracy"):
        assert metric in quality["targets"][0]["rawSql"]
    steps = quality["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert any(step["value"] == 0.7 for step in steps)
    assert quality["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"]["mode"] != "off"
    annotations = [a for a in dashboard["annotations"]["list"] if a.get("datasource", {}).get("uid") == DATASOURCE_UID]
    assert annotations
    assert "FROM alerts" in annotations[0]["target"]["rawSql"]


# ---------------------------------------------------------------------------------------------------
# SQL against the schema
# ---------------------------------------------------------------------------------------------------

QUERIES = _all_queries()
QUERY_IDS = [where for where, _ in QUERIES]
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
LAST_30_MINUTES = TimeRange.last(30, now=NOW)


def test_macro_expansion_matches_grafana() -> None:
    sql = "SELECT $__timeGroupAlias(scored_at, 10s, 0), count(*) FROM predictions WHERE $__timeFilter(scored_at)"
    assert expand_macros(sql, LAST_30_MINUTES) == (
        'SELECT floor(extract(epoch from scored_at)/10)*10 AS "time", count(*) FROM predictions '
        "WHERE scored_at BETWEEN '2026-11-26T11:30:00Z' AND '2026-11-26T12:00:00Z'"
    )


@pytest.mark.parametrize(
    ("sql", "expanded"),
    [
        ("$__timeGroup(t, '5m')", "floor(extract(epoch from t)/300)*300"),
        ("$__timeGroup(t, 500ms)", "floor(extract(epoch from t)/0.5)*0.5"),
        ("$__timeGroup(t, 1h), x", 'floor(extract(epoch from t)/3600)*3600 AS "time", x'),
        ("$__timeGroupAlias(t, $__interval)", 'floor(extract(epoch from t)/10)*10 AS "time"'),
        ("$__interval_ms", "10000"),
        ("$__time(t)", 't AS "time"'),
        ("$__timeEpoch(t)", 'extract(epoch from t) as "time"'),
        ("$__unixEpochFilter(s)", "s >= 1795692600 AND s <= 1795694400"),
        ("$__unixEpochFrom() $__unixEpochTo()", "1795692600 1795694400"),
        ("$__unixEpochGroupAlias(s, 1m)", 'floor((s)/60)*60 AS "time"'),
        ("$__timeFrom() $__timeTo()", "'2026-11-26T11:30:00Z' '2026-11-26T12:00:00Z'"),
    ],
)
def test_macros_expand_like_grafanas_postgres_engine(sql: str, expanded: str) -> None:
    assert expand_macros(sql, LAST_30_MINUTES) == expanded


def test_fractional_times_keep_only_significant_digits() -> None:
    time_range = TimeRange(NOW - timedelta(minutes=5, microseconds=250_000), NOW)
    assert expand_macros("$__timeFrom()", time_range) == "'2026-11-26T11:54:59.75Z'"


@pytest.mark.parametrize("sql", ["$__nope(t)", "$__timeGroup(t)", "$__timeGroup(t, 10 seconds)", "$__timeFilter()"])
def test_macros_grafana_rejects_are_rejected(sql: str) -> None:
    with pytest.raises(MacroError):
        expand_macros(sql, LAST_30_MINUTES)


@pytest.mark.parametrize(("where", "sql"), QUERIES, ids=QUERY_IDS)
def test_sql_uses_only_tables_and_columns_of_the_schema(where: str, sql: str) -> None:
    expanded = expand_macros(sql, LAST_30_MINUTES)
    tables = referenced_tables(expanded)
    assert tables, f"{where}: no table found"
    unknown_tables = tables - TABLE_COLUMNS.keys()
    assert not unknown_tables, f"{where}: unknown tables {unknown_tables}"
    known_columns = set().union(*(TABLE_COLUMNS[table] for table in tables))
    unknown_columns = referenced_columns(expanded) - known_columns
    assert not unknown_columns, f"{where}: columns {unknown_columns} are not in {sorted(tables)}"


@pytest.mark.parametrize(("where", "sql"), QUERIES, ids=QUERY_IDS)
def test_reserved_word_columns_are_quoted(where: str, sql: str) -> None:
    without_literals = re.sub(r"'(?:[^']|'')*'", " ", sql)
    assert not re.search(r'(?<!")\bcolumn\b(?!")', without_literals, re.IGNORECASE), where


def test_every_query_runs_on_postgres(postgres_url: str) -> None:
    """Seed one row per table, then run every expanded query: each must succeed and return rows."""
    from sqlalchemy import insert, text

    from churn_common.database import (
        alerts,
        get_engine,
        monitoring_metrics,
        monitoring_windows,
        predictions,
        retraining_runs,
    )
    from churn_common.database import rejected_records as rejected
    from churn_common.schema import FEATURE_COLUMNS

    engine = get_engine(postgres_url)
    window_start = NOW - timedelta(minutes=10)
    window_end = NOW - timedelta(minutes=5)
    scored = NOW - timedelta(minutes=2)
    with engine.begin() as conn:
        conn.execute(
            insert(predictions),
            [
                {
                    "event_id": f"shardId-000000000000:{i}:0",
                    "record_id": f"r{i}",
                    "source_id": "f1",
                    "row": i,
                    "event_time": scored - timedelta(seconds=5),
                    "arrival_time": scored - timedelta(seconds=1),
                    "scored_at": scored + timedelta(seconds=i),
                    "model_name": "XGBoostChurnModel",
                    "model_version": "3",
                    "churn_probability": i / 10,
                    "churn_prediction": int(i >= 5),
                    "label": None,
                    **dict.fromkeys(FEATURE_COLUMNS, 1),
                }
                for i in range(10)
            ],
        )
        conn.execute(
            insert(rejected),
            {"event_id": "e1", "stage": "scorer", "reason": "bad", "payload": "{}", "rejected_at": scored},
        )
        conn.execute(
            insert(monitoring_windows),
            {
                "window_start": window_start,
                "window_end": window_end,
                "model_version": "3",
                "status": "evaluated",
                "n_rows": 10,
                "drift_share": 0.3,
                "dataset_drift": False,
                "f1": 0.8,
                "precision": 0.75,
                "recall": 0.85,
                "accuracy": 0.9,
                "evaluated_at": NOW,
            },
        )
        conn.execute(
            insert(monitoring_metrics),
            {
                "window_start": window_start,
                "window_end": window_end,
                "model_version": "3",
                "metric": "column_drift",
                "column": "age",
                "value": 0.05,
            },
        )
        conn.execute(
            insert(retraining_runs),
            {
                "model_name": "XGBoostChurnModel",
                "serving_version": "3",
                "first_window_start": window_start,
                "last_window_end": window_end,
                "n_windows": 1,
                "status": "kept",
                "reason": "challenger f1 0.600 vs serving 0.650: not better",
                "started_at": NOW - timedelta(minutes=4),
            },
        )
        conn.execute(
            insert(alerts),
            {
                "window_start": window_start,
                "window_end": window_end,
                "kind": "drift",
                "subject": "drift",
                "message": "m",
                "sent_at": NOW - timedelta(minutes=4),
            },
        )
    with engine.connect() as conn:
        for where, sql in QUERIES:
            expanded = expand_macros(sql, LAST_30_MINUTES)
            rows = conn.execute(text(expanded.replace(":", r"\:"))).fetchall()
            assert rows, f"{where}: no rows on seeded tables\n{expanded}"
