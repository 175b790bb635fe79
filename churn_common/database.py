"""Tables of the pipeline and the engine factory (SQLite by default, Postgres via DATABASE_URL)."""

from __future__ import annotations

import re
import threading
from pathlib import Path
from urllib.parse import quote

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Engine,
    Float,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    inspect,
    text,
)
from sqlalchemy.engine import URL, Inspector, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.schema import CreateColumn

from churn_common.schema import FEATURES

metadata = MetaData()

FEATURE_COLUMN_TYPES = {int: Integer, float: Float}  # by a feature's value type

predictions = Table(
    "predictions",
    metadata,
    Column("event_id", String(128), primary_key=True, comment="<stream creation ms>/shardId:seq:subSeq"),
    Column("record_id", String(80), nullable=False),
    Column("source_id", String(64), nullable=False),
    Column("row", BigInteger, nullable=False),
    Column("event_time", DateTime(timezone=True), nullable=False),
    Column("arrival_time", DateTime(timezone=True), nullable=False),
    Column("scored_at", DateTime(timezone=True), nullable=False),
    Column("model_name", String(128), nullable=False),
    Column("model_version", String(32), nullable=False),
    Column("churn_probability", Float, nullable=False),
    Column("churn_prediction", SmallInteger, nullable=False),
    Column("label", SmallInteger, nullable=True),
    *(Column(feature.name, FEATURE_COLUMN_TYPES[feature.value_type], nullable=False) for feature in FEATURES),
    Column("challenger_version", String(32), nullable=True, comment="shadow-scored beside model_version, if any"),
    Column("challenger_probability", Float, nullable=True),
    Column("customer_id", String(64), nullable=True, comment="when the record carried one"),
    Index("ix_predictions_event_time", "event_time"),
    Index("ix_predictions_record_id", "record_id"),
    Index("ix_predictions_scored_at", "scored_at"),
    Index("ix_predictions_customer_scored_at", "customer_id", "scored_at"),
)

rejected_records = Table(
    "rejected_records",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_id", String(128), nullable=False, unique=True),
    Column("stage", String(32), nullable=False),
    Column("source_id", String(64), nullable=True, comment="when the payload was readable far enough"),
    Column("reason", Text, nullable=False),
    Column("payload", Text, nullable=False),
    Column("rejected_at", DateTime(timezone=True), nullable=False),
)

monitoring_windows = Table(
    "monitoring_windows",
    metadata,
    Column("window_start", DateTime(timezone=True), primary_key=True),
    Column("window_end", DateTime(timezone=True), nullable=False),
    Column("model_version", String(32), primary_key=True),
    Column("status", String(32), nullable=False),
    Column("n_rows", Integer, nullable=False),
    Column("drift_share", Float),
    Column("dataset_drift", Boolean),
    Column("prediction_drift_score", Float),
    Column("f1", Float),
    Column("precision", Float),
    Column("recall", Float),
    Column("accuracy", Float),
    Column("report_uri", Text),
    Column("evaluated_at", DateTime(timezone=True), nullable=False),
    *(Column(f"estimated_{name}", Float) for name in ("f1", "precision", "recall", "accuracy", "roc_auc")),
    Column("challenger_version", String(32), comment="the challenger shadow-scored in the window, if any"),
    Column("agreement", Float, comment="share of shadow-scored records both versions decided alike"),
    Column("challenger_f1", Float),
    Column("label_coverage", Float, comment="labelled records / records of the window"),
    Column("challenger_estimated_f1", Float),
    Column("estimate_error", Float, comment="estimated_f1 - f1, once labels give f1"),
    Column("estimate_stood", Boolean, comment="quality rested on the estimate at some evaluation"),
)

monitoring_metrics = Table(
    "monitoring_metrics",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("window_start", DateTime(timezone=True), nullable=False),
    Column("window_end", DateTime(timezone=True), nullable=False),
    Column("model_version", String(32), nullable=False),
    Column("metric", String(64), nullable=False),
    Column("column", String(64), nullable=True),
    Column("value", Float, nullable=True),
    Index("ix_monitoring_metrics_window", "window_start", "model_version"),
)

alerts = Table(
    "alerts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("window_start", DateTime(timezone=True), nullable=False),
    Column("window_end", DateTime(timezone=True), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("subject", String(100), nullable=False),
    Column("message", Text, nullable=False),
    Column("message_id", String(128), nullable=True),
    Column("sent_at", DateTime(timezone=True), nullable=False),
    Column("status", String(16), nullable=False, server_default="sent", comment="sent, suppressed, recovery"),
    UniqueConstraint("window_start", "kind", name="uq_alerts_window_kind"),
)

detector_state = Table(
    "detector_state",
    metadata,
    Column("detector", String(160), primary_key=True),
    Column("watermark_scored_at", DateTime(timezone=True), nullable=True, comment="last prediction consumed"),
    Column("watermark_event_id", String(128), nullable=True),
    Column("state", Text, nullable=False, comment="JSON of the detector"),
    Column("revision", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

retraining_runs = Table(
    "retraining_runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model_name", String(128), nullable=False),
    Column("serving_version", String(32), nullable=False, comment="the version whose windows fell below"),
    Column("first_window_start", DateTime(timezone=True), nullable=False),
    Column("last_window_end", DateTime(timezone=True), nullable=False),
    Column("n_windows", Integer, nullable=False),
    Column(
        "status",
        String(16),
        nullable=False,
        comment="running, promoted, kept, skipped, failed; challenging, then promoted, retired or superseded",
    ),
    Column("reason", Text, nullable=True),
    Column("n_train_rows", Integer, nullable=True),
    Column("n_holdout_rows", Integer, nullable=True),
    Column("challenger_version", String(32), nullable=True),
    Column("challenger_f1", Float, nullable=True),
    Column("serving_f1", Float, nullable=True),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=True),
    Column("origin", String(16), nullable=True, comment="retraining (NULL: rows before live promotion) or alias"),
    Column("live_first_window_start", DateTime(timezone=True), nullable=True, comment="live windows judged"),
    Column("live_last_window_end", DateTime(timezone=True), nullable=True),
    Column("live_serving_f1", Float, nullable=True, comment="mean over the live windows judged"),
    Column("live_challenger_f1", Float, nullable=True),
    UniqueConstraint("model_name", "serving_version", "last_window_end", name="uq_retraining_runs_trigger"),
)

# Label files processed (batch_monitor/labels): one row per object version, so a re-run or a re-delivered
# object is never ingested twice, while new content under the same key (a new version or ETag) is.
label_files = Table(
    "label_files",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key", Text, nullable=False),
    Column("version", String(1024), nullable=False, comment="the S3 version id, else the ETag"),
    Column("n_rows", Integer, nullable=False),
    Column("joined", Integer, nullable=False),
    Column("duplicate", Integer, nullable=False),
    Column("unknown", Integer, nullable=False),
    Column("too_old", Integer, nullable=False),
    Column("rejected", Integer, nullable=False),
    Column("processed_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("key", "version", name="uq_label_files_object_version"),
)

# Every row of every label file, with its outcome: joined, duplicate, unknown (retried), too_old, rejected.
labels = Table(
    "labels",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("file_id", Integer, nullable=False),
    Column(
        "record_id", String(80), nullable=True, comment="NULL for a rejected row without one, a customer's unmatched"
    ),
    Column("churned", SmallInteger, nullable=True),
    Column("observed_at", DateTime(timezone=True), nullable=True),
    Column("source_key", Text, nullable=False),
    Column("row", Integer, nullable=False, comment="data row of the file, from 1"),
    Column("status", String(16), nullable=False),
    Column("reason", Text, nullable=True),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("joined_at", DateTime(timezone=True), nullable=True, comment="when predictions.label was set from it"),
    Column("customer_id", String(64), nullable=True, comment="a label by customer: record_id is the one it judged"),
    Index("ix_labels_status_record", "status", "record_id"),
    Index("ix_labels_joined_at", "joined_at"),
)


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


_USERINFO_TO_LAST_AT = re.compile(
    r"^(?P<scheme>[^:/]+://)(?P<username>[^:/@]*):(?P<password>.*)@(?P<location>[^@]*)$", re.S
)


def engine_url(url: str) -> URL:
    """``url`` parsed, with a password that holds an unencoded ``@`` kept whole.

    SQLAlchemy ends the password at its first ``@``: the rest of it would become part of the host name (or
    an invalid port), so the connection fails and its error text shows that part of the password. When the
    host parsed that way holds an ``@``, the password runs to the last ``@`` instead, and is encoded."""
    try:
        parsed = make_url(url)
        if "@" not in (parsed.host or ""):
            return parsed
    except ValueError:  # a port that is not a number, e.g. the remainder of a password holding "@" and ":"
        pass
    match = _USERINFO_TO_LAST_AT.match(url)
    if match is None:
        raise ValueError("DATABASE_URL cannot be parsed (not shown: it may hold a password)")
    scheme, username, password, location = match.group("scheme", "username", "password", "location")
    return make_url(f"{scheme}{username}:{quote(password, safe='')}@{location}")


_ENGINES: dict[str, Engine] = {}
_ENGINES_LOCK = threading.Lock()


def get_engine(url: str) -> Engine:
    """One engine per URL and process; creates the tables on first use (idempotent)."""
    with _ENGINES_LOCK:
        if url not in _ENGINES:
            _ENGINES[url] = _create(url)
        return _ENGINES[url]


def dispose_engine(url: str) -> None:
    with _ENGINES_LOCK:
        engine = _ENGINES.pop(url, None)
    if engine is not None:
        engine.dispose()


def _create(url: str) -> Engine:
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url)
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        engine = create_engine(engine_url(url), pool_pre_ping=True)
        _follow_rotated_secret(engine)
    metadata.create_all(engine)
    inspector = inspect(engine)  # one reading of the schema for both steps: engines are made at cold start
    _add_missing_columns(engine, inspector)
    _add_missing_indexes(engine, inspector)
    return engine


def _add_missing_columns(engine: Engine, inspector: Inspector) -> None:
    """Tables are only ever extended by nullable or defaulted columns, so adding what an older database lacks
    is the whole migration. Two processes may race to add a column: the loser finds it there."""
    quote = engine.dialect.identifier_preparer.quote
    for table in metadata.sorted_tables:
        present = {column["name"] for column in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name in present:
                continue
            ddl = f"ALTER TABLE {quote(table.name)} ADD COLUMN {CreateColumn(column).compile(dialect=engine.dialect)}"
            try:
                with engine.begin() as connection:
                    connection.execute(text(ddl))
            except DBAPIError:
                if column.name not in {c["name"] for c in inspect(engine).get_columns(table.name)}:
                    raise


def _add_missing_indexes(engine: Engine, inspector: Inspector) -> None:
    """``create_all`` creates indexes only with their table: an index declared beside a column added later is
    created here, on the first use of an older database (a racing process may create it first)."""
    for table in metadata.sorted_tables:
        present = {index["name"] for index in inspector.get_indexes(table.name)}
        for index in table.indexes:
            if index.name in present:
                continue
            try:
                index.create(engine, checkfirst=True)
            except DBAPIError:
                if index.name not in {i["name"] for i in inspect(engine).get_indexes(table.name)}:
                    raise


def _follow_rotated_secret(engine: Engine) -> None:
    from churn_common.settings import get_settings

    secret_arn = get_settings().database_secret_arn
    if secret_arn:
        from churn_common.database_credentials import RotatingCredentials, follow_secret

        follow_secret(engine, RotatingCredentials(secret_arn))
