from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from churn_common.schema import FEATURE_COLUMNS, LABEL_COLUMN
from data.bundled import BUNDLED_SAMPLES, SAMPLES_DIR
from data.churn_csv import read_churn_csv
from data.constraints import age_group_of, invalid_rows
from data.drift import STRONG_DRIFT_COLUMNS
from data.synthetic import generate, main, strong_drift

ROWS = 2000


@pytest.fixture(scope="module")
def parametric() -> pd.DataFrame:
    return generate(n_rows=ROWS, seed=5)


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"drift": strong_drift()},
        {"drift": strong_drift(strength=-1.5)},
        {"drift": {"age_group": 2.0, "charge_amount": 3.0}, "label_noise": 0.2},
        {"base": "reference", "drift": strong_drift(strength=2.0)},
    ],
    ids=["plain", "strong", "negative", "extreme", "bootstrap"],
)
def test_every_batch_is_valid_per_the_schema(options: dict[str, object]) -> None:
    # GIVEN any mode and drift
    if options.get("base") == "reference":
        options = {**options, "base": read_churn_csv(SAMPLES_DIR / "reference.csv")}
    # WHEN generated
    batch = generate(n_rows=500, seed=3, **options)  # type: ignore[arg-type]
    # THEN it has the dataset's columns, no invalid row and ages consistent with age groups
    assert list(batch.columns) == [*FEATURE_COLUMNS, LABEL_COLUMN]
    assert len(batch) == 500
    assert invalid_rows(batch) == []
    assert batch["age_group"].equals(age_group_of(batch["age"]))


def test_same_seed_same_rows_other_seed_other_rows() -> None:
    # GIVEN two calls with one seed and one with another WHEN generated THEN only the seed changes the rows
    pd.testing.assert_frame_equal(generate(n_rows=300, seed=9), generate(n_rows=300, seed=9))
    assert not generate(n_rows=300, seed=9).equals(generate(n_rows=300, seed=10))


def test_marginals_look_like_the_churn_dataset(parametric: pd.DataFrame) -> None:
    # GIVEN a parametric batch THEN its marginals have the dataset's shape
    assert 0.10 <= parametric["churn"].mean() <= 0.22
    assert 0.10 <= (parametric["call_failure"] == 0).mean() <= 0.35
    assert 0.02 <= (parametric["seconds_of_use"] == 0).mean() <= 0.10
    assert parametric["seconds_of_use"].mean() > parametric["seconds_of_use"].median()
    assert 0.65 <= (parametric["status"] == 1).mean() <= 0.85
    assert (parametric["tariff_plan"] == 1).mean() >= 0.85
    assert (parametric["charge_amount"] == 0).mean() >= 0.45
    assert parametric["charge_amount"].between(0, 9).all()
    assert set(parametric["age"]) == {15, 25, 30, 45, 55}


def test_usage_columns_move_together(parametric: pd.DataFrame) -> None:
    # GIVEN a parametric batch THEN usage-driven columns are strongly correlated, as in the dataset
    corr = parametric.corr(method="spearman")
    assert corr.loc["seconds_of_use", "frequency_of_use"] > 0.8
    assert corr.loc["seconds_of_use", "distinct_called_numbers"] > 0.6
    assert corr.loc["frequency_of_sms", "customer_value"] > 0.7
    assert corr.loc["seconds_of_use", "status"] < -0.2


def test_churn_depends_on_complaints_and_inactivity(parametric: pd.DataFrame) -> None:
    # GIVEN a parametric batch THEN complainers and non-active customers churn far more often
    rate = parametric.groupby("complains")["churn"].mean()
    assert rate[1] > 3 * rate[0]
    rate = parametric.groupby("status")["churn"].mean()
    assert rate[2] > 3 * rate[1]


@pytest.mark.parametrize("mode", ["parametric", "bootstrap"])
def test_drift_moves_only_the_named_columns(mode: str) -> None:
    # GIVEN the same seed with and without drift on two columns
    base = read_churn_csv(SAMPLES_DIR / "reference.csv") if mode == "bootstrap" else None
    plain = generate(n_rows=ROWS, seed=4, base=base, with_label=False)
    drifted = generate(n_rows=ROWS, seed=4, base=base, with_label=False, drift={"seconds_of_use": 1, "status": 1})
    # THEN the numeric mean rises by about one standard deviation
    shift = (drifted["seconds_of_use"].mean() - plain["seconds_of_use"].mean()) / plain["seconds_of_use"].std()
    assert 0.6 <= shift <= 1.5
    # AND the majority category loses about half its share
    assert (drifted["status"] == 1).mean() < 0.65 * (plain["status"] == 1).mean()
    # AND other columns are untouched
    others = [c for c in FEATURE_COLUMNS if c not in {"seconds_of_use", "status"}]
    pd.testing.assert_frame_equal(drifted[others], plain[others])


def test_negative_strength_moves_down_and_zero_strength_changes_nothing() -> None:
    # GIVEN one seed WHEN drifted by -1 and by 0
    plain = generate(n_rows=ROWS, seed=6)
    down = generate(n_rows=ROWS, seed=6, drift={"subscription_length": -1.0, "charge_amount": -1.0})
    still = generate(n_rows=ROWS, seed=6, drift={"subscription_length": 0.0})
    # THEN the negative one lowers the columns and the zero one is a no-op
    assert (
        down["subscription_length"].mean()
        < plain["subscription_length"].mean() - 0.5 * plain["subscription_length"].std()
    )
    assert down["charge_amount"].mean() < plain["charge_amount"].mean()
    pd.testing.assert_frame_equal(still, plain)


def test_age_drift_keeps_age_groups_consistent() -> None:
    # GIVEN a drift on age WHEN generated THEN customers are older and groups follow ages
    plain, older = generate(n_rows=ROWS, seed=8), generate(n_rows=ROWS, seed=8, drift={"age": 1.0})
    assert older["age"].mean() > plain["age"].mean() + 5
    assert older["age_group"].equals(age_group_of(older["age"]))


@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.35])
def test_label_noise_flips_exactly_that_fraction(fraction: float) -> None:
    # GIVEN the same seed with and without label noise
    clean = generate(n_rows=ROWS, seed=12)
    noisy = generate(n_rows=ROWS, seed=12, label_noise=fraction)
    # THEN features are identical and the given share of labels differs
    pd.testing.assert_frame_equal(noisy[list(FEATURE_COLUMNS)], clean[list(FEATURE_COLUMNS)])
    assert (noisy["churn"] != clean["churn"]).sum() == round(fraction * ROWS)


def test_label_can_be_omitted_but_then_not_made_noisy() -> None:
    # GIVEN a request without labels THEN only features come out; noise without labels is refused
    assert list(generate(n_rows=10, with_label=False).columns) == list(FEATURE_COLUMNS)
    with pytest.raises(ValueError, match="label noise needs labels"):
        generate(n_rows=10, with_label=False, label_noise=0.1)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"n_rows": 0}, "n_rows must be positive"),
        ({"n_rows": 10, "drift": {"shoe_size": 1.0}}, "shoe_size"),
        ({"n_rows": 10, "label_noise": 1.5}, "between 0 and 1"),
    ],
)
def test_bad_options_are_refused(options: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        generate(**options)  # type: ignore[arg-type]


def test_bootstrap_keeps_the_joint_distribution_of_its_base() -> None:
    # GIVEN a base where churn depends on complaints
    base = read_churn_csv(SAMPLES_DIR / "reference.csv")
    # WHEN resampled
    batch = generate(n_rows=ROWS, seed=2, base=base)
    # THEN the label rate and the complaint effect stay, and rows are jittered copies, not exact ones
    assert batch["churn"].mean() == pytest.approx(base["churn"].mean(), abs=0.03)
    base_effect = base.groupby("complains")["churn"].mean().diff().iloc[-1]
    assert batch.groupby("complains")["churn"].mean().diff().iloc[-1] == pytest.approx(base_effect, abs=0.12)
    assert batch["customer_value"].isin(base["customer_value"]).mean() < 0.2


def test_bootstrap_needs_a_label_to_keep_one(churn_frame: Callable[..., pd.DataFrame]) -> None:
    unlabelled = churn_frame(with_label=False)
    with pytest.raises(ValueError, match="no 'churn' column"):
        generate(n_rows=10, base=unlabelled)
    assert LABEL_COLUMN not in generate(n_rows=10, base=unlabelled, with_label=False).columns


def test_strong_drift_shifts_most_columns_and_can_be_narrowed() -> None:
    assert len(strong_drift()) >= 2 * len(FEATURE_COLUMNS) / 3
    assert set(strong_drift()) == set(STRONG_DRIFT_COLUMNS)
    assert strong_drift(["age", "status"], strength=0.5) == {"age": 0.5, "status": 0.5}
    with pytest.raises(ValueError, match="bogus"):
        strong_drift(["bogus"])


def test_cli_generate_writes_original_headers_and_applies_options(tmp_path: Path) -> None:
    # GIVEN the CLI asked for a drifted unlabelled batch
    out = tmp_path / "batch.csv"
    code = main(
        ["generate", "--rows", "300", "--seed", "3", "--drift", "status=1", "age=0.5", "--no-label", "--out", str(out)]
    )
    # THEN the file has original headers, no label, and equals the API's output
    assert code == 0
    assert out.read_text().startswith("Call  Failure,")
    expected = generate(n_rows=300, seed=3, drift={"status": 1, "age": 0.5}, with_label=False)
    pd.testing.assert_frame_equal(read_churn_csv(out), expected)


def test_cli_generate_resamples_a_base_file(tmp_path: Path) -> None:
    # GIVEN a base file WHEN resampled with label noise through the CLI THEN labels are kept and noised
    out = tmp_path / "noisy.csv"
    base = SAMPLES_DIR / "reference.csv"
    assert main(["generate", "--rows", "100", "--base", str(base), "--label-noise", "0.5", "--out", str(out)]) == 0
    expected = generate(n_rows=100, base=read_churn_csv(base), label_noise=0.5)
    pd.testing.assert_frame_equal(read_churn_csv(out), expected)


@pytest.mark.parametrize("argument", ["status", "status=high"])
def test_cli_rejects_malformed_drift(argument: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["generate", "--drift", argument, "--out", str(tmp_path / "x.csv")])
    assert exit_info.value.code == 2
    assert "COLUMN=STRENGTH" in capsys.readouterr().err


def test_cli_reports_unknown_drift_column(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["generate", "--drift", "shoe_size=1", "--out", str(tmp_path / "x.csv")]) == 2
    assert "shoe_size" in capsys.readouterr().err
    assert not (tmp_path / "x.csv").exists()


def test_cli_samples_rebuild_the_committed_files_byte_for_byte(tmp_path: Path) -> None:
    # GIVEN the committed samples WHEN rebuilt into another folder THEN each file is byte-identical
    assert main(["samples", "--dir", str(tmp_path)]) == 0
    for sample in BUNDLED_SAMPLES:
        assert (tmp_path / sample.file_name).read_bytes() == (SAMPLES_DIR / sample.file_name).read_bytes(), sample


def test_numpy_generators_do_not_leak_global_state() -> None:
    # GIVEN the global numpy state seeded WHEN a batch is generated THEN the global state is untouched
    np.random.seed(0)
    expected = np.random.random()
    np.random.seed(0)
    generate(n_rows=50, seed=1)
    assert np.random.random() == expected
