"""Fetch the original Iranian churn dataset (UCI 563) and keep a validated, normalised copy locally.

The real data is never shipped with the project: it is downloaded on demand from its source, checked
against the pipeline's row model, and stored under the local state directory for training.
"""

from __future__ import annotations

import argparse
import io
import logging
import sys
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import pandas as pd

from churn_common.settings import Settings, get_settings
from data.churn_csv import read_churn_csv, write_churn_csv
from data.constraints import invalid_rows

UCI_DATASET_URL = "https://archive.ics.uci.edu/static/public/563/iranian+churn+dataset.zip"
DEFAULT_TIMEOUT_SECONDS = 30.0
# The published file has a handful of rows outside the documented ranges (e.g. charge amount 10).
MAX_INVALID_SHARE = 0.01
UCI_FILE_NAME = "iranian_churn.csv"

logger = logging.getLogger(__name__)


class DownloadError(RuntimeError):
    """The dataset could not be fetched or unpacked (offline, HTTP error, not a zip)."""


class InvalidDatasetError(ValueError):
    """The fetched file does not match the dataset's schema."""


@dataclass(frozen=True)
class DownloadResult:
    path: Path
    rows: int
    rejected_rows: int


def uci_dataset_path(settings: Settings) -> Path:
    """Where the downloaded copy lives, inside the local state directory."""
    return settings.local_state_dir / "data" / UCI_FILE_NAME


def download_dataset(
    *,
    url: str = UCI_DATASET_URL,
    destination: Path | None = None,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    max_invalid_share: float = MAX_INVALID_SHARE,
) -> DownloadResult:
    """Download, validate and store the dataset; rows the row model rejects are dropped and counted."""
    target = destination or uci_dataset_path(get_settings())
    csv_bytes = _csv_from_zip(_fetch(url, timeout=timeout), url=url)
    try:
        rows = read_churn_csv(io.BytesIO(csv_bytes))
    except ValueError as exc:
        raise InvalidDatasetError(f"{url} does not hold the churn dataset: {exc}") from exc
    errors = invalid_rows(rows)
    if len(errors) > max_invalid_share * len(rows):
        raise InvalidDatasetError(
            f"{len(errors)} of {len(rows)} rows are invalid, more than {max_invalid_share:.0%}; "
            f"first: row {errors[0].row}: {errors[0].message}"
        )
    if errors:
        logger.warning("dropping %d invalid rows, first: row %d: %s", len(errors), errors[0].row, errors[0].message)
    valid = rows.drop(index=rows.index[[e.row for e in errors]])
    _write_atomically(valid, target)
    logger.info("stored %d valid rows of the churn dataset in %s", len(valid), target)
    return DownloadResult(path=target, rows=len(valid), rejected_rows=len(errors))


def _fetch(url: str, *, timeout: float) -> bytes:
    try:
        response = httpx.get(url, timeout=timeout, follow_redirects=True)
        response.raise_for_status()
    except httpx.HTTPError as exc:
        raise DownloadError(f"could not download {url}: {str(exc) or type(exc).__name__}") from exc
    return response.content


def _csv_from_zip(payload: bytes, *, url: str) -> bytes:
    try:
        archive = zipfile.ZipFile(io.BytesIO(payload))
    except zipfile.BadZipFile as exc:
        raise DownloadError(f"{url} did not return a zip archive") from exc
    with archive:
        members = [
            name for name in archive.namelist() if name.lower().endswith(".csv") and not name.startswith("__MACOSX/")
        ]
        if len(members) != 1:
            raise DownloadError(f"expected one CSV file in the archive from {url}, found {len(members)}: {members}")
        return archive.read(members[0])


def _write_atomically(rows: pd.DataFrame, target: Path) -> None:
    """A half-written file must never look like a finished download."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    write_churn_csv(rows, partial, original_headers=False)
    partial.replace(target)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m data.download", description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=UCI_DATASET_URL, help="where to fetch the zip from")
    parser.add_argument("--out", type=Path, default=None, help="output CSV (default: <LOCAL_STATE_DIR>/data/)")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_SECONDS, help="seconds per request")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        result = download_dataset(url=args.url, destination=args.out, timeout=args.timeout)
    except DownloadError as exc:
        print(f"error: {exc} (offline or the source moved?)", file=sys.stderr)
        return 1
    except InvalidDatasetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"downloaded {result.rows} valid rows ({result.rejected_rows} rejected) to {result.path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
