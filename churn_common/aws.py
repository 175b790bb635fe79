"""boto3 clients. Endpoints come from ``AWS_ENDPOINT_URL`` (read by botocore), so the same code
talks to AWS or to the local emulator."""

from __future__ import annotations

import threading
from functools import lru_cache
from typing import Any

import boto3
import botocore.session
from botocore.config import Config
from botocore.loaders import Loader, create_loader

from churn_common.settings import get_settings

CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=30)
_CREATING = threading.Lock()


@lru_cache(maxsize=1)
def _service_models() -> Loader:
    """Botocore's reader of the service model files, kept for the process: a new session otherwise reads
    and parses them again, two thirds of the cost of its first client."""
    return create_loader()


@lru_cache(maxsize=1)
def session() -> boto3.session.Session:
    """The one session every client comes from: credentials are resolved once per process, and the local
    stack gives this session the credentials of each component's deployed role (infra/local/principals.py)."""
    core = botocore.session.get_session()
    core.register_component("data_loader", _service_models())
    return boto3.session.Session(botocore_session=core)


@lru_cache(maxsize=16)
def client(service: str) -> Any:
    """A cached client per service (clients are thread-safe; creating one costs ~50 ms, and a session is not
    safe to create clients from in several threads at once)."""
    with _CREATING:
        return session().client(service, region_name=get_settings().aws_region, config=CLIENT_CONFIG)


def forget_clients() -> None:
    """Drop the cached session and clients, so the next call reads endpoints and credentials anew."""
    client.cache_clear()
    session.cache_clear()


def alert_topic_arn() -> str:
    settings = get_settings()
    if settings.alert_topic_arn:
        return settings.alert_topic_arn
    account = client("sts").get_caller_identity()["Account"]
    return f"arn:aws:sns:{settings.aws_region}:{account}:{settings.alert_topic}"
