"""Ranges: conformal quantiles, per-stone spreads on data with known noise, coverage by group."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import KFold

from diamond_model.learning.evaluation import coverage_by_group
from diamond_model.pricing.intervals import conformal_quantiles, fit_spread


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
