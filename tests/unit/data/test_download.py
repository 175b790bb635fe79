from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from churn_common.schema import FEATURE_COLUMNS, LABEL_COLUMN
from data.churn_csv import read_churn_csv
from data.constraints import invalid_rows
from data.dataset import TRAINING_FILE_NAME
from data.download import (
    DownloadError,
    InvalidDatasetError,
    download_dataset,
    main,
    uci_dataset_path,
)

UNREACHABLE_URL = "http://127.0.0.1:9/iranian+churn+dataset.zip"
FAIL_FAST_SECONDS = 5.0


@pytest.fixture
def serve_zip(make_zip: Callable[..., Path], serve_directory: Callable[[Path], str]) -> Callable[..., str]:
    """Zip the given members, serve them over HTTP, return the archive's URL."""

    def serve(members: dict[str, bytes]) -> str:
        archive = make_zip(members)
        return f"{serve_directory(archive.parent)}/{archive.name}"

    return serve


def test_downloads_and_validates_the_real_dataset(
    real_data_dir: Path, serve_zip: Callable[..., str], tmp_path: Path
) -> None:
    # GIVEN the real training split zipped as the source publishes it, served over HTTP
    source = real_data_dir / TRAINING_FILE_NAME
    url = serve_zip({"Customer Churn.csv": source.read_bytes()})
    # WHEN downloaded
    result = download_dataset(url=url, destination=tmp_path / "state" / "iranian_churn.csv")
    # THEN every source row is either stored or counted as rejected, and what is stored is valid
    stored = read_churn_csv(result.path)
    assert result.rows + result.rejected_rows == len(read_churn_csv(source))
    assert result.rows == len(stored) > 0
    assert result.rejected_rows <= 0.01 * len(stored)
    assert list(stored.columns) == [*FEATURE_COLUMNS, LABEL_COLUMN]
    assert invalid_rows(stored) == []
    assert result.path.read_text().startswith(",".join(FEATURE_COLUMNS))


def test_stores_normalised_rows_and_drops_a_few_invalid_ones(
    churn_frame: Callable[..., pd.DataFrame],
    csv_bytes: Callable[..., bytes],
    serve_zip: Callable[..., str],
    tmp_path: Path,
) -> None:
    # GIVEN 200 rows, one of them out of range, zipped with unrelated files
    frame = churn_frame(200)
    frame.loc[7, "charge_amount"] = 11
    url = serve_zip({"readme.txt": b"about", "data/Customer Churn.csv": csv_bytes(frame)})
    # WHEN downloaded
    result = download_dataset(url=url, destination=tmp_path / "out.csv", max_invalid_share=0.01)
    # THEN the invalid row is dropped and counted, the rest stored with normalised headers
    assert (result.rows, result.rejected_rows) == (199, 1)
    pd.testing.assert_frame_equal(read_churn_csv(result.path), frame.drop(index=7).reset_index(drop=True))
    assert not list(tmp_path.glob("*.partial"))


def test_too_many_invalid_rows_fail_with_the_first_reason(
    churn_frame: Callable[..., pd.DataFrame],
    csv_bytes: Callable[..., bytes],
    serve_zip: Callable[..., str],
    tmp_path: Path,
) -> None:
    # GIVEN a file whose rows are mostly out of range
    frame = churn_frame(100)
    frame.loc[:60, "tariff_plan"] = 3
    url = serve_zip({"c.csv": csv_bytes(frame)})
    # WHEN downloaded THEN it fails naming the count and the column, and nothing is stored
    with pytest.raises(InvalidDatasetError, match=r"61 of 100 rows are invalid.*tariff_plan"):
        download_dataset(url=url, destination=tmp_path / "out.csv")
    assert not (tmp_path / "out.csv").exists()


def test_missing_column_fails_naming_the_column(
    churn_frame: Callable[..., pd.DataFrame],
    csv_bytes: Callable[..., bytes],
    serve_zip: Callable[..., str],
    tmp_path: Path,
) -> None:
    # GIVEN a zip whose CSV has no Status column
    url = serve_zip({"c.csv": csv_bytes(churn_frame().drop(columns="status"))})
    # WHEN downloaded THEN the error names the column
    with pytest.raises(InvalidDatasetError, match="missing feature columns: status"):
        download_dataset(url=url, destination=tmp_path / "out.csv")


def test_unreachable_source_fails_fast_and_clearly(tmp_path: Path) -> None:
    # GIVEN nothing listening WHEN downloading THEN a clear error comes back within seconds
    started = time.monotonic()
    with pytest.raises(DownloadError, match=r"could not download http://127\.0\.0\.1:9/"):
        download_dataset(url=UNREACHABLE_URL, destination=tmp_path / "out.csv", timeout=2)
    assert time.monotonic() - started < FAIL_FAST_SECONDS


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ({"a.csv": b"x", "b.csv": b"y"}, "expected one CSV file in the archive .* found 2"),
        ({"notes.txt": b"x"}, "expected one CSV file in the archive .* found 0"),
    ],
)
def test_archive_must_hold_exactly_one_csv(
    members: dict[str, bytes], message: str, serve_zip: Callable[..., str], tmp_path: Path
) -> None:
    with pytest.raises(DownloadError, match=message):
        download_dataset(url=serve_zip(members), destination=tmp_path / "out.csv")


def test_http_errors_and_non_zip_answers_are_download_errors(
    serve_directory: Callable[[Path], str], tmp_path: Path
) -> None:
    # GIVEN a server with a CSV but no zip
    served = tmp_path / "served"
    served.mkdir()
    (served / "plain.csv").write_text("a,b\n1,2\n")
    base = serve_directory(served)
    # WHEN asked for a missing file or a non-zip THEN both fail as download errors
    with pytest.raises(DownloadError, match="404"):
        download_dataset(url=f"{base}/missing.zip", destination=tmp_path / "out.csv")
    with pytest.raises(DownloadError, match="did not return a zip archive"):
        download_dataset(url=f"{base}/plain.csv", destination=tmp_path / "out.csv")


def test_default_destination_is_inside_the_local_state_dir(tmp_path: Path) -> None:
    from churn_common.settings import Settings

    settings = Settings(LOCAL_STATE_DIR=tmp_path)
    assert uci_dataset_path(settings) == tmp_path / "data" / "iranian_churn.csv"


def test_cli_exits_zero_on_success_and_one_when_offline(
    churn_frame: Callable[..., pd.DataFrame],
    csv_bytes: Callable[..., bytes],
    serve_zip: Callable[..., str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN a served archive and an unreachable address
    url = serve_zip({"c.csv": csv_bytes(churn_frame(50))})
    out = tmp_path / "cli.csv"
    # WHEN the CLI downloads from each
    ok = main(["--url", url, "--out", str(out)])
    ok_output = capsys.readouterr().out
    offline = main(["--url", UNREACHABLE_URL, "--out", str(tmp_path / "never.csv"), "--timeout", "2"])
    # THEN success reports the rows and exits 0; the offline run exits 1 with a clear message
    assert ok == 0
    assert "downloaded 50 valid rows (0 rejected)" in ok_output
    assert len(read_churn_csv(out)) == 50
    assert offline == 1
    assert "could not download http://127.0.0.1:9/" in capsys.readouterr().err
