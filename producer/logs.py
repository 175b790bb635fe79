"""The producer's log: the redacting Powertools logger of :mod:`churn_common.lambda_logging`, service
``producer``."""

from __future__ import annotations

from churn_common.lambda_logging import service_logger

SERVICE = "producer"

log = service_logger(SERVICE)
