"""The Lambdas' log: a Powertools for AWS Lambda :class:`~aws_lambda_powertools.Logger` per service, writing
one JSON line per record to the current stdout, every line redacted whole.

Any line may quote an error text naming a URL with credentials (an unreachable registry's
``MLFLOW_TRACKING_URI``): the formatter redacts the whole line (message, extra keys, traceback), and a
:class:`~churn_common.redaction.RedactingFilter` on the logger redacts each record for handlers that are not
this one (the Lambda runtime's root handler, a test's log capture).
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

from churn_common.redaction import RedactingFilter, redact

__all__ = ["CurrentStdoutHandler", "RedactingFormatter", "logged_services", "service_logger"]

_SERVICES: set[str] = set()


class RedactingFormatter(LambdaPowertoolsFormatter):
    """The Powertools JSON line, redacted whole (:func:`churn_common.redaction.redact`)."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class CurrentStdoutHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stdout`` is when a line is written (what Lambda ships to CloudWatch), not the
    stream of import time: a test's captured stdout, or a local runner's redirected one."""

    @property  # type: ignore[override]
    def stream(self) -> TextIO:
        return sys.stdout

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        """``StreamHandler.__init__`` assigns a stream: ignored, the current one is always used."""


def service_logger(service: str, *, propagate: bool = True) -> Logger:
    """The Powertools logger of ``service``; idempotent (Powertools configures a service's logger once).

    ``propagate=False`` when the lines are complete as they are and a root handler would print them twice."""
    log = Logger(service=service, logger_formatter=RedactingFormatter(), logger_handler=CurrentStdoutHandler())
    standard = logging.getLogger(service)
    if not any(isinstance(f, RedactingFilter) for f in standard.filters):
        standard.addFilter(RedactingFilter())
    standard.propagate = propagate
    _SERVICES.add(service)
    return log


def logged_services() -> frozenset[str]:
    """The services whose logger is set up in this process: a local runner may send their lines elsewhere."""
    return frozenset(_SERVICES)
