"""Page-Hinkley on block means of churn probabilities: quiet on a stationary stream, quick on a shift, and the
same result whether the stream arrives in one piece or in many."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import TypeAdapter

from batch_monitor.early_warning.detector import BLOCK_ROWS, DETECTOR_CONFIG, VersionState, advance, feed
from batch_monitor.early_warning.page_hinkley import Direction, PageHinkley

# Churn probabilities of a confident classifier: most near 0, some near 1 (mean about 0.17, sd about 0.33).
CALM_SHARE, SURGE_SHARE = 0.15, 0.32


def probabilities(n: int, *, churner_share: float, rng: np.random.Generator) -> np.ndarray:
    churners = rng.random(n) < churner_share
    return np.where(churners, rng.beta(8, 1.5, n), rng.beta(1, 30, n))


def stream(n: int, *, rng: np.random.Generator, shift_at: int | None = None) -> np.ndarray:
    if shift_at is None:
        return probabilities(n, churner_share=CALM_SHARE, rng=rng)
    calm = probabilities(shift_at, churner_share=CALM_SHARE, rng=rng)
    return np.concatenate([calm, probabilities(n - shift_at, churner_share=SURGE_SHARE, rng=rng)])


def run(values: np.ndarray, *, pieces: int = 1) -> tuple[VersionState, list]:  # type: ignore[type-arg]
    times = np.arange(len(values), dtype="float64")
    state, shifts = VersionState(), []
    for part in np.array_split(np.arange(len(values)), pieces):
        state, found = feed(state, values[part], times[part], version="1", config=DETECTOR_CONFIG)
        shifts.extend(found)
    return state, shifts


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_stationary_stream_raises_no_alarm(seed: int) -> None:
    # GIVEN 100,000 predictions from one unchanging population (2,000 blocks)
    values = stream(100_000, rng=np.random.default_rng(seed))
    # WHEN fed to the detector THEN no shift is reported, and every prediction was consumed
    state, shifts = run(values)
    assert shifts == []
    assert state.consumed == 100_000


def test_a_mid_stream_rise_is_found_within_a_few_hundred_predictions() -> None:
    # GIVEN 5,000 calm predictions, then the share of likely churners doubles
    values = stream(8_000, rng=np.random.default_rng(7), shift_at=5_000)
    # WHEN fed to the detector
    _, shifts = run(values)
    # THEN one upward shift, beginning near the change and found within 500 predictions of it
    [found] = shifts
    assert found.shift.direction is Direction.UP
    assert 5_000 - 2 * BLOCK_ROWS <= found.shift.started_at <= 5_000 + 2 * BLOCK_ROWS
    assert found.detected_at - 5_000 <= 500
    assert found.shift.before == pytest.approx(values[:5_000].mean(), abs=0.02)
    assert found.shift.after == pytest.approx(values[5_000:].mean(), abs=0.05)


def test_a_fall_is_found_too_and_the_new_level_becomes_the_baseline() -> None:
    # GIVEN a surge that ends: the share falls back and stays there
    rng = np.random.default_rng(8)
    values = np.concatenate(
        [probabilities(3_000, churner_share=SURGE_SHARE, rng=rng), probabilities(20_000, churner_share=0.1, rng=rng)]
    )
    # WHEN fed THEN exactly one downward shift: after it the detector learns the new level and stays quiet
    _, shifts = run(values)
    assert [s.shift.direction for s in shifts] == [Direction.DOWN]


@pytest.mark.parametrize("pieces", [2, 7, 333])
def test_a_stream_in_pieces_gives_exactly_the_uninterrupted_result(pieces: int) -> None:
    # GIVEN a stream with a shift, fed whole and fed in pieces of uneven length (blocks straddle pieces)
    values = stream(9_000, rng=np.random.default_rng(9), shift_at=4_000)
    whole, whole_shifts = run(values)
    split, split_shifts = run(values, pieces=pieces)
    # THEN the state and the shifts are identical, to the last bit
    assert split == whole
    assert split_shifts == whole_shifts


def test_the_state_round_trips_through_json_unchanged() -> None:
    state, _ = run(stream(1_234, rng=np.random.default_rng(10)))
    adapter = TypeAdapter(dict[str, VersionState])
    assert adapter.validate_json(adapter.dump_json({"3": state})) == {"3": state}
    assert state.block.count == 1_234 % BLOCK_ROWS


def test_each_model_version_has_its_own_detector() -> None:
    # GIVEN two versions interleaved: version 1 stays calm, version 2 shifts half-way
    rng = np.random.default_rng(11)
    calm = stream(6_000, rng=rng)
    shifting = stream(6_000, rng=rng, shift_at=3_000)
    versions = np.array(["1", "2"] * 6_000)
    values = np.empty(12_000)
    values[versions == "1"], values[versions == "2"] = calm, shifting
    # WHEN both go through one pass of the stream
    states, shifts = advance({}, versions=list(versions), values=values, times=np.arange(12_000.0))
    # THEN only version 2 reports a shift, and each version consumed its own predictions
    assert {s.model_version for s in shifts} == {"2"}
    assert (states["1"].consumed, states["2"].consumed) == (6_000, 6_000)


def test_warmup_observations_only_set_the_mean() -> None:
    detector = PageHinkley()
    for value in [0.1] * DETECTOR_CONFIG.warmup:
        detector, shift = detector.update(value, position=0.0, config=DETECTOR_CONFIG)
        assert shift is None
    assert detector.count == DETECTOR_CONFIG.warmup
    assert detector.mean == pytest.approx(0.1)
    assert detector.up.total == detector.down.total == 0.0
