"""Evidently reports as static HTML objects in the pipeline's bucket, linked from the tables and alerts."""

from __future__ import annotations

from typing import Any

from batch_monitor.windows import Window

HTML_CONTENT_TYPE = "text/html"


def report_key(*, prefix: str, window: Window, model_version: str) -> str:
    """``reports/2026-11-26T06:50:00Z_3.html``: sorts by time, one object per window and version."""
    return f"{prefix}{window.label}_{model_version}.html"


def upload_report(html: str, *, s3: Any, bucket: str, prefix: str, window: Window, model_version: str) -> str:
    """Store (or replace, on a re-run) the report and return its ``s3://`` URI."""
    key = report_key(prefix=prefix, window=window, model_version=model_version)
    s3.put_object(Bucket=bucket, Key=key, Body=html.encode("utf-8"), ContentType=HTML_CONTENT_TYPE)
    return f"s3://{bucket}/{key}"
