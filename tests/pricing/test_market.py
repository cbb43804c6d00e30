"""The market index: monthly levels from residuals, smoothing where data are thin."""

from __future__ import annotations

import numpy as np
import pytest

from diamond_model.pricing.market import MarketIndex, fit_index, month_label, month_number


def test_months_are_numbered_and_labelled() -> None:
    dates = np.array(["2026-01-15", "2026-03-01", "2025-12-31"], dtype="datetime64[D]")
    months = month_number(dates)
    assert [month_label(m) for m in months] == ["2026-01", "2026-03", "2025-12"]
    assert months[1] - months[0] == 2


def test_a_level_move_is_recovered_and_normalised_to_the_average() -> None:
    rng = np.random.default_rng(0)
    months = np.repeat([24312, 24314, 24315], [5000, 3000, 3000])
    true = np.where(months == 24312, 0.0, np.log(1.15))
    residuals = true + rng.normal(0, 0.09, len(months)) - np.log(1.15) * 6 / 11
    index = fit_index(months, residuals)
    assert list(index.n) == [5000, 3000, 3000]
    move = index.level[-1] - index.level[0]
    assert np.expm1(move) == pytest.approx(0.15, abs=0.01)
    assert np.average(index.level, weights=index.n) == pytest.approx(0.0, abs=1e-12)
    assert (index.se < 0.004).all()
    assert index.at(np.array([24313]))[0] == index.level[0], "a month without data: the one before"
    assert index.at(np.array([24400]))[0] == index.latest_level, "after the data: the latest"
    frame = index.frame()
    assert frame["period"].tolist() == ["2026-01", "2026-03", "2026-04"]
    assert (frame["low_pct"] < frame["level_pct"]).all()


def test_a_thin_month_leans_on_its_neighbours() -> None:
    rng = np.random.default_rng(1)
    months = np.repeat([100, 101, 102], [2000, 3, 2000])
    residuals = rng.normal(0, 0.09, len(months))
    residuals[2000:2003] += 0.5  # three wild appraisals in the middle month
    index = fit_index(months, residuals)
    assert abs(index.level[1]) < 0.1, "three appraisals do not make a 65 % market"
    assert index.se[1] > 5 * index.se[0]


def test_one_month_means_no_movement() -> None:
    index = fit_index(np.zeros(500, dtype=int), np.random.default_rng(2).normal(0, 0.1, 500))
    assert index.level.tolist() == [0.0] and index.latest_level == 0.0
    flat = MarketIndex.flat(np.array([5, 5, 7]))
    assert flat.n.tolist() == [2, 1] and flat.latest_month == 7
