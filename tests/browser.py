"""Headless Chromium from its own command line: a page's DOM after its scripts ran, and its screenshot.

Debian's ``chromium`` (``make browser``) is driven through its CLI rather than a browser library: the
pages are read-only dashboards, and the CLI's ``--dump-dom`` and ``--screenshot`` after a virtual-time
budget are all the tests need, with no driver protocol and no browser download.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

# Debian's package first (make browser); the others take the same flags.
EXECUTABLES = ("chromium", "chromium-browser", "google-chrome")
# Virtual time the page gets to load its data and draw before the DOM or the picture is taken.
RENDER_BUDGET_MS = 20_000
PROCESS_TIMEOUT_SECONDS = 120
WINDOW_SIZE = (1400, 1000)
# Charts animate in; reduced motion draws them at once, so a picture shows the lines, not an empty frame.
_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--force-prefers-reduced-motion",
    "--no-first-run",
    f"--virtual-time-budget={RENDER_BUDGET_MS}",
)


def chromium() -> str | None:
    return next((path for name in EXECUTABLES if (path := shutil.which(name))), None)


def require_chromium() -> str:
    """The browser; without one the test is skipped locally, but fails under CI, where ``make test`` installs it."""
    path = chromium()
    if path is None:
        reason = f"no headless browser ({' or '.join(EXECUTABLES)} on PATH): install it with `make browser`"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI installs it before the tests")
        pytest.skip(reason)
    return path


def _run(url: str, *extra: str) -> str:
    browser = require_chromium()
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        result = subprocess.run(
            [browser, *_FLAGS, f"--user-data-dir={profile}", *extra, url],
            capture_output=True,
            text=True,
            timeout=PROCESS_TIMEOUT_SECONDS,
            check=False,
        )
    if result.returncode != 0:
        raise RuntimeError(f"chromium exited with {result.returncode} on {url}: {result.stderr[-2000:]}")
    return result.stdout


def rendered_dom(url: str) -> str:
    """The page's DOM once its scripts have run (data fetched, charts drawn)."""
    return _run(url, "--dump-dom")


def screenshot(url: str, path: Path, *, size: tuple[int, int] = WINDOW_SIZE) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    _run(url, f"--screenshot={path}", f"--window-size={size[0]},{size[1]}")
    if not path.is_file() or path.stat().st_size == 0:
        raise RuntimeError(f"chromium wrote no screenshot of {url} to {path}")
    return path
