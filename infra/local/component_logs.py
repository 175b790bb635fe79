"""Where a local runner's component output goes: a log file, so the console keeps its progress bars and
summary (``make demo``, ``make chaos``).

The Lambdas write JSON log lines and EMF metric lines to stdout, as Lambda expects (it ships a function's
stdout to CloudWatch Logs); locally that stdout is the file. Set up before Prefect is imported: it reads its
logging settings then.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from rich.console import Console

from churn_common.lambda_logging import CurrentStdoutHandler, logged_services

LOG_FORMAT = "%(asctime)s %(levelname)s %(threadName)s %(name)s %(message)s"


def terminal_console() -> Console:
    """A console bound to the terminal's stdout now, so it keeps printing there once stdout is the log."""
    return Console(file=sys.stdout)


@contextlib.contextmanager
def component_output_to(path: Path) -> Iterator[Path]:
    """Component logs (tracebacks included) and anything the Lambdas print go to ``path`` while inside."""
    from producer import lambda_handler as _producer  # noqa: F401  each handler sets its logger up on import
    from stream_scorer import lambda_handler as _scorer  # noqa: F401

    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    path.parent.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(filename=path, level=logging.INFO, format=LOG_FORMAT, force=True)
    for service in logged_services():
        component = logging.getLogger(service)
        for stdout in [h for h in component.handlers if isinstance(h, CurrentStdoutHandler)]:
            component.removeHandler(stdout)
        component.propagate = True
    with path.open("a", encoding="utf-8") as log, contextlib.redirect_stdout(log):
        yield path
