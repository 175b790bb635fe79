"""Credentials out of log lines and error messages: the userinfo of every URL in a text becomes ``***``.

Settings hold URLs with passwords (``DATABASE_URL``, ``MLFLOW_TRACKING_URI``), and error texts quote them
(an unreachable server, an unparsable URL). Log lines end up in CloudWatch and consoles that more people
read than may know the passwords, so text that may hold a URL is redacted where it is written.

The userinfo runs from ``://`` to the *last* ``@`` before the host, so a password holding an unencoded
``@``, ``:`` or ``/`` is hidden whole. When a ``@`` follows in the path or query, more than the userinfo is
hidden: too much rather than too little. A URL stops at whitespace, quotes and angle brackets (how error
texts and JSON lines delimit it; a JSON-escaped ``\\"`` is part of it), and at the start of another
``scheme://``.
"""

from __future__ import annotations

import logging
import re

MASK = "***"

_SCHEME = r"[A-Za-z][A-Za-z0-9+.\-]*://"
_URL_USERINFO = re.compile(
    rf"(?<![A-Za-z0-9+.\-])(?P<scheme>{_SCHEME})"  # a scheme starting a word, not the tail of one
    rf"(?P<userinfo>(?:(?!{_SCHEME})(?:\\\"|[^\s'\"<>]))+)"  # greedy: to the URL's last '@'; \" as JSON escapes "
    r"@"
)


def redact(text: str) -> str:
    """``text`` with ``scheme://user:password@host`` (or ``scheme://:password@host``) as ``scheme://***@host``."""
    return _URL_USERINFO.sub(rf"\g<scheme>{MASK}@", text)


class RedactingFilter(logging.Filter):
    """Redacts a record's message and traceback text before any handler formats it.

    On a logger whose handlers are not the project's (the Lambda runtime's, for the producer), this is the
    one place every line passes. Standard formatters reuse ``exc_text`` when set, so the traceback (whose
    last line repeats the exception text) is formatted once here and shown redacted."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = redact(record.getMessage()), ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True
