"""Ranges: conformal quantiles, per-stone spreads on data with known noise, coverage by group."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import KFold

from diamond_model.enums import Inputs
from diamond_model.learning.evaluation import coverage_by_group
from diamond_model.learning.training import held_out_stretch
from diamond_model.pricing.intervals import Spread, conformal_quantiles, fit_spread


@pytest.mark.parametrize("level", [0.5, 0.8, 0.9, 0.95])
def test_conformal_quantiles_cover_the_requested_share(level: float) -> None:
    rng = np.random.default_rng(0)
    low, high = conformal_quantiles(np.sort(rng.normal(0, 0.1, 5000)), level)
    fresh = rng.normal(0, 0.1, 20000)
    assert ((fresh >= low) & (fresh <= high)).mean() == pytest.approx(level, abs=0.015)


def test_calibration_needs_residuals() -> None:
    with pytest.raises(ValueError, match="at least two calibration residuals"):
        conformal_quantiles(np.array([0.1]), 0.9)


def test_coverage_by_group_recovers_known_coverage() -> None:
    """Synthetic stones whose noise is known: a range of ±1.645 σ covers 90 % in each group,
    and a range made for the wrong σ covers what the normal distribution says it should."""
    rng = np.random.default_rng(1)
    n = 40_000
    group = rng.choice(["small", "large"], n)
    sigma = np.where(group == "small", 0.05, 0.15)
    noise = rng.normal(0, sigma)
    right = np.abs(noise) <= 1.645 * sigma
    wrong = np.abs(noise) <= 1.645 * 0.05  # the small stones' width for every stone
    results = pd.DataFrame({"group": group, "inside": right, "width": 2 * 1.645 * sigma})
    table = coverage_by_group(results, "group").set_index("group")
    assert table.loc["small", "coverage"] == pytest.approx(90, abs=1)
    assert table.loc["large", "coverage"] == pytest.approx(90, abs=1)
    assert table.loc["large", "median_width"] == pytest.approx(100 * 2 * 1.645 * 0.15, rel=1e-6)
    assert table["n"].sum() == n
    off = coverage_by_group(results.assign(inside=wrong), "group").set_index("group")
    # P(|Z| ≤ 1.645 / 3) for the large stones: 41 %.
    assert off.loc["large", "coverage"] == pytest.approx(41.8, abs=1.5)


def test_local_spread_widens_where_the_noise_is_larger() -> None:
    """Four features like the 4Cs, the noise ten times larger for large 'carats': the per-side
    scales follow it, and both groups are covered at the requested level."""
    rng = np.random.default_rng(2)
    n = 6000
    features = np.column_stack(
        [
            rng.uniform(0.2, 3.0, n),
            rng.integers(0, 5, n),
            rng.integers(0, 7, n),
            rng.integers(0, 8, n),
        ]
    ).astype(float)
    sigma = np.where(features[:, 0] > 1.5, 0.20, 0.02)
    residuals = rng.normal(0, sigma)
    folds = list(KFold(5, shuffle=True, random_state=0).split(features))
    spread = fit_spread(features, residuals, folds)
    fresh = np.column_stack(
        [
            rng.uniform(0.2, 3.0, n),
            rng.integers(0, 5, n),
            rng.integers(0, 7, n),
            rng.integers(0, 8, n),
        ]
    ).astype(float)
    fresh_sigma = np.where(fresh[:, 0] > 1.5, 0.20, 0.02)
    fresh_residuals = rng.normal(0, fresh_sigma)
    low, high = spread.offsets(fresh, 0.9)
    inside = (fresh_residuals >= low) & (fresh_residuals <= high)
    large = fresh[:, 0] > 1.5
    assert inside[large].mean() == pytest.approx(0.9, abs=0.03)
    assert inside[~large].mean() == pytest.approx(0.9, abs=0.03)
    assert np.median((high - low)[large]) > 5 * np.median((high - low)[~large])
    wider_low, wider_high = spread.offsets(fresh, 0.9, widen=1.5)
    np.testing.assert_allclose(wider_high - wider_low, 1.5 * (high - low))


def _stones(rng: np.random.Generator, n: int) -> np.ndarray:
    return np.column_stack(
        [
            rng.uniform(0.2, 3.0, n),
            rng.integers(0, 5, n),
            rng.integers(0, 7, n),
            rng.integers(0, 8, n),
        ]
    ).astype(float)


def _inside(spread: Spread, stones: np.ndarray, residuals: np.ndarray) -> float:
    low, high = spread.offsets(stones, 0.9)
    return float(((residuals >= low) & (residuals <= high)).mean())


def _scores(spread: Spread, stones: np.ndarray, residuals: np.ndarray) -> np.ndarray:
    down, up = spread.scales(stones)
    return np.where(residuals < 0, residuals / down, residuals / up)


def test_the_held_out_stretch_brings_ranges_calibrated_on_larger_misses_back_to_the_level() -> None:
    """The calibration's misses are a fifth larger than the served model's (as out-of-fold errors
    of models on four fifths of the data are): its ranges over-cover. The held-out stones'
    stretch, below and above on their own, brings them back to 90 %."""
    rng = np.random.default_rng(3)
    stones = _stones(rng, 5000)
    calibration = rng.normal(0, 0.12, len(stones))
    folds = list(KFold(5, shuffle=True, random_state=0).split(stones))
    spread = fit_spread(stones, calibration, folds)
    fresh = _stones(rng, 20_000)
    served_misses = rng.normal(0, 0.10, len(fresh))
    assert _inside(spread, fresh, served_misses) > 0.94

    held = _stones(rng, 20_000)
    scores = {Inputs.ALL: _scores(spread, held, rng.normal(0, 0.10, len(held)))}
    below, above = held_out_stretch({Inputs.ALL: spread}, scores, 0.9)[Inputs.ALL]
    # Misses a sixth smaller: both sides narrower, by less than the sixth (the scales' own noise
    # widens the scores of both sets alike).
    assert 0.8 < below < 0.92
    assert 0.8 < above < 0.92
    assert _inside(spread.stretched(below, above), fresh, served_misses) == pytest.approx(
        0.9, abs=0.01
    )
    # From 1,000 held-out stones (the bundled data's fifth) it moves 71 % of the way in log.
    some = {Inputs.ALL: scores[Inputs.ALL][:1000]}
    partly, _ = held_out_stretch({Inputs.ALL: spread}, some, 0.9)[Inputs.ALL]
    assert below < partly < 1.0
    # Each side on its own: misses above the estimate alone grew, so only that side widens.
    lopsided = np.where(scores[Inputs.ALL] > 0, 1.5 * scores[Inputs.ALL], scores[Inputs.ALL])
    below, above = held_out_stretch({Inputs.ALL: spread}, {Inputs.ALL: lopsided}, 0.9)[Inputs.ALL]
    assert below < 0.95 < 1.1 < above


def test_too_few_held_out_stones_leave_the_ranges_as_calibrated() -> None:
    rng = np.random.default_rng(4)
    stones = _stones(rng, 2000)
    folds = list(KFold(5, shuffle=True, random_state=0).split(stones))
    spread = fit_spread(stones, rng.normal(0, 0.12, len(stones)), folds)
    few = {Inputs.ALL: _scores(spread, stones[:99], rng.normal(0, 0.01, 99))}
    assert held_out_stretch({Inputs.ALL: spread}, few, 0.9) == {Inputs.ALL: (1.0, 1.0)}
    # However small the held-out misses, no side is narrowed by more than a quarter.
    many = {Inputs.ALL: _scores(spread, stones, rng.normal(0, 0.01, len(stones)))}
    assert held_out_stretch({Inputs.ALL: spread}, many, 0.9) == {Inputs.ALL: (0.75, 0.75)}
    # Held-out misses all above the estimate: the side below narrows as far as allowed (its
    # quantile is on the wrong side, no power of a negative ratio), the side above on its own.
    above_only = {Inputs.ALL: np.abs(many[Inputs.ALL]) * 40}
    below, above = held_out_stretch({Inputs.ALL: spread}, above_only, 0.9)[Inputs.ALL]
    assert below == 0.75 and isinstance(above, float) and 0.75 <= above <= 4 / 3
    # Half of 120 held-out stones: trusted as 120 (the halves of the reported coverage).
    half = {Inputs.ALL: few[Inputs.ALL][:60]}
    assert held_out_stretch({Inputs.ALL: spread}, half, 0.9) == {Inputs.ALL: (1.0, 1.0)}
    assert held_out_stretch({Inputs.ALL: spread}, half, 0.9, share=0.5) != {Inputs.ALL: (1.0, 1.0)}
    same = spread.stretched(1.0, 1.0)
    assert same.quantiles(0.9) == spread.quantiles(0.9)
    assert spread.stretched(0.8, 1.25).quantiles(0.9) == pytest.approx(
        (0.8 * spread.quantiles(0.9)[0], 1.25 * spread.quantiles(0.9)[1])
    )
