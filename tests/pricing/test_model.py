"""Model behaviour: monotone in the 4Cs, exact additive explanations, honest baselines."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from diamond_model.data.schema import CLARITIES, COLORS, CUTS, FOUR_C
from diamond_model.enums import Inputs
from diamond_model.learning.evaluation import compare_models, summarise
from diamond_model.pricing.model import PriceModel, PricingModel, encode, linear_baseline

VARIANTS = {"full": Inputs.ALL, "reduced": Inputs.FOUR_C}


def grid(carats: list[float]) -> pd.DataFrame:
    """Every combination of grades at the given carats, with typical proportions."""
    rows = []
    for carat, cut, color, clarity in itertools.product(carats, CUTS, COLORS, CLARITIES):
        side = 6.5 * (carat / 1.0) ** (1 / 3)
        rows.append(
            {
                "carat": carat,
                "cut": cut,
                "color": color,
                "clarity": clarity,
                "depth": 61.8,
                "table": 57.0,
                "x": side,
                "y": side,
                "z": side * 0.618,
            }
        )
    return pd.DataFrame(rows)


@pytest.mark.parametrize("variant", ["full", "reduced"])
@pytest.mark.parametrize("grade", ["cut", "color", "clarity"])
def test_a_better_grade_never_lowers_the_price(
    pricing_model: PricingModel, variant: str, grade: str
) -> None:
    stones = grid([0.3, 0.7, 1.0, 1.5, 2.5])
    stones["log_price"] = pricing_model.regressor(VARIANTS[variant]).predict_log(stones)
    others = [c for c in ("carat", "cut", "color", "clarity") if c != grade]
    scale = {"cut": CUTS, "color": COLORS, "clarity": CLARITIES}[grade]
    stones["rank"] = stones[grade].map({g: i for i, g in enumerate(scale)})
    steps = stones.sort_values("rank").groupby(others)["log_price"].diff().dropna()
    assert len(steps) > 1000
    assert (steps >= -1e-12).all(), f"{grade} lowered a price by {steps.min():.4f} log-units"


@pytest.mark.parametrize("variant", ["full", "reduced"])
def test_a_heavier_stone_never_gets_a_lower_price(
    pricing_model: PricingModel, variant: str
) -> None:
    carats = [round(c, 2) for c in np.arange(0.2, 4.5, 0.05)]
    stones = grid(carats)
    # Hold the measurements fixed too: "everything else equal" means only the carat changes.
    for axis in ("x", "y", "z"):
        stones[axis] = 6.0 if axis != "z" else 3.7
    stones["log_price"] = pricing_model.regressor(VARIANTS[variant]).predict_log(stones)
    steps = stones.sort_values("carat").groupby(["cut", "color", "clarity"])["log_price"].diff()
    assert (steps.dropna() >= -1e-12).all()


def test_contributions_add_up_to_the_prediction(
    pricing_model: PricingModel, complete: pd.DataFrame
) -> None:
    stones = complete.iloc[4000:4500]
    for inputs in (Inputs.ALL, Inputs.FOUR_C):
        regressor = pricing_model.regressor(inputs)
        matrix = encode(stones, regressor.features)
        explainer = pricing_model.explainer(inputs)
        log_price, contributions = explainer.contributions(matrix)
        total = explainer.base_log + contributions.sum(axis=1)
        np.testing.assert_allclose(total, regressor.predict_log_matrix(matrix), rtol=0, atol=1e-9)
        np.testing.assert_allclose(log_price, regressor.predict_log_matrix(matrix), atol=0)
        assert contributions.shape == (len(stones), len(regressor.features))


def test_the_size_of_the_model_grows_with_the_data(complete: pd.DataFrame) -> None:
    """Below the medium size's threshold only the small trees are tried; above it, both are,
    by out-of-fold MAPE, and the budget stops the search when it would overrun."""
    from diamond_model.learning.training import _folds, choose_capacity
    from diamond_model.pricing.model import CAPACITIES

    small = complete.iloc[:1500]
    prices = small["price"].to_numpy(float)
    capacity, residuals, trials = choose_capacity(small, prices, _folds(len(small), 0), 60, 0)
    assert capacity.name == "small" and [t.capacity for t in trials] == ["small"]
    assert residuals.shape == (len(small),)
    many = pd.concat([complete] * 2, ignore_index=True)  # 9,966 rows: past the medium threshold
    many["carat"] = many["carat"] + np.repeat([0.0, 0.001], len(complete))
    assert len(many) >= CAPACITIES[1].min_rows
    prices = many["price"].to_numpy(float)
    _, _, trials = choose_capacity(many, prices, _folds(len(many), 0), 0.0, 0)
    assert [t.capacity for t in trials] == ["small"], "no budget: the larger size is not tried"
    capacity, _, trials = choose_capacity(many, prices, _folds(len(many), 0), 600, 0)
    assert [t.capacity for t in trials] == ["small", "medium"]
    assert capacity.name == min(trials, key=lambda t: t.mape).capacity

    from diamond_model.pricing.model import Capacity

    tiny = tuple(Capacity(f"s{k}", 7, 40, 0.2, 10, k * 500) for k in range(3))
    prices = small["price"].to_numpy(float)
    _, _, trials = choose_capacity(small, prices, _folds(1500, 0), 600, 0, tiny)
    assert [t.capacity for t in trials] == ["s1", "s2"], "the two largest the data allow"
    assert [c.name for c in CAPACITIES] == ["small", "medium", "large"]
    assert CAPACITIES[2].min_rows == 40_000, "a size for large stores"


def test_unconstrained_variant_exists_for_comparison(appraisals: pd.DataFrame) -> None:
    sample = appraisals.iloc[:600]
    free = PriceModel(monotone=False, n_estimators=50).fit(sample, sample["price"])
    assert free._lgb_params()["monotone_constraints"] == [0] * 9
    assert PriceModel()._lgb_params()["monotone_constraints"] == [1, 1, 1, 1, 0, 0, 0, 0, 0]
    assert PriceModel()._lgb_params()["objective"] == "huber"


def test_linear_baseline_is_a_power_law_in_carat(appraisals: pd.DataFrame) -> None:
    model = linear_baseline().fit(appraisals[list(FOUR_C)], appraisals["price"])
    slope = model.regressor_.named_steps["ols"].coef_[0]
    assert 1.4 < slope < 2.2, "price grows roughly as carat^1.7 in this market"


def test_model_comparison_reports_every_candidate(appraisals: pd.DataFrame) -> None:
    folds = compare_models(appraisals.iloc[:1500], n_splits=2)
    table = summarise(folds)
    assert set(table.index) == {
        "linear_4c",
        "gbm_4c_monotone",
        "gbm_unconstrained",
        "gbm_monotone_l2",
        "gbm_monotone_advanced",
        "gbm_monotone",
    }
    assert table.loc["gbm_monotone", "shipped"]
    assert table.loc["gbm_monotone", "mape_mean"] < table.loc["linear_4c", "mape_mean"]


def test_fitting_is_reproducible(appraisals: pd.DataFrame) -> None:
    sample = appraisals.iloc[:800]
    first = PriceModel(n_estimators=100).fit(sample, sample["price"]).predict(sample)
    second = PriceModel(n_estimators=100).fit(sample, sample["price"]).predict(sample)
    np.testing.assert_array_equal(first, second)


def test_price_per_carat_by_weight_leaves_thin_bins_as_gaps() -> None:
    from diamond_model.reports.analysis import price_per_carat_by_weight

    # Many stones at 1.80 and 2.00 ct, two at 1.90 ct, none at 1.85 or 1.95 ct.
    carats = [1.80] * 6 + [1.90] * 2 + [2.00] * 6
    prices = [9_000 * c for c in carats[:6]] + [20_000, 20_000] + [14_000 * c for c in carats[8:]]
    table = price_per_carat_by_weight(pd.DataFrame({"carat": carats, "price": prices}))
    assert table["weight"].tolist() == [1.8, 1.85, 1.9, 1.95, 2.0]
    assert table["size"].tolist() == [6, 0, 2, 0, 6]
    assert table["median"].isna().tolist() == [False, True, True, True, False]
    assert table["median"].iloc[-1] == pytest.approx(14_000)


def test_sample_weights_decide_which_appraisals_count(appraisals: pd.DataFrame) -> None:
    stones = appraisals.iloc[:1500]
    doubled = stones.assign(price=stones["price"] * 2)
    both = pd.concat([stones, doubled])
    old_first = np.r_[np.ones(len(stones)), np.full(len(stones), 1e-6)]
    model = PriceModel(features=FOUR_C).fit(both, both["price"], sample_weight=old_first)
    ratio = np.median(model.predict(stones) / stones["price"])
    assert 0.9 < ratio < 1.1, "the doubled prices barely count"
    model = PriceModel(features=FOUR_C).fit(both, both["price"], sample_weight=old_first[::-1])
    assert 1.8 < np.median(model.predict(stones) / stones["price"]) < 2.2


@pytest.fixture(scope="module")
def shape_model(appraisals: pd.DataFrame) -> PricingModel:
    """A pricing model at a size that reads the stones' volume and outline (fewer trees: this
    tests the reading, not the accuracy)."""
    from dataclasses import replace

    from diamond_model.learning.training import fit_pricing_model
    from diamond_model.pricing.model import CAPACITIES

    medium = replace(CAPACITIES[1], min_rows=0, n_estimators=150, learning_rate=0.1)
    return fit_pricing_model(appraisals.iloc[:3000], capacities=(medium,))[0]


def test_the_larger_sizes_read_volume_and_outline_and_the_waterfall_gives_them_to_the_millimetres(
    shape_model: PricingModel, complete: pd.DataFrame
) -> None:
    from diamond_model.learning.monotonicity import check
    from diamond_model.pricing import artefact
    from diamond_model.pricing.quote import quote_stone
    from diamond_model.pricing.shape import shape_values

    assert shape_model.full.features[-2:] == ("volume", "outline")
    assert shape_model.reduced.features == FOUR_C
    stones = complete.iloc[4000:4200]
    matrix = encode(stones, shape_model.full.features)
    x, y, z = (stones[a].to_numpy(float) for a in ("x", "y", "z"))
    np.testing.assert_allclose(matrix[:, -2], x * y * z)
    np.testing.assert_allclose(matrix[:, -1], np.maximum(x, y) / np.minimum(x, y))
    assert (matrix[:, -1] >= 1).all()
    assert np.isnan(shape_values(np.array([np.nan]), np.array([5.0]), np.array([3.0]))["volume"])
    assert shape_model.typical["volume"] == pytest.approx(
        shape_model.typical["x"] * shape_model.typical["y"] * shape_model.typical["z"]
    )

    stone = stones.iloc[0].to_dict()
    quote = quote_stone(shape_model, stone, 0.9)
    assert quote.explanation is not None
    size = next(step for step in quote.explanation.steps if step.feature == "size")
    assert [part.feature for part in size.parts] == ["carat", "x", "y", "z"]
    assert sum(part.dollars for part in size.parts) == pytest.approx(size.dollars, abs=0.005)
    total = quote.explanation.base_price + sum(step.dollars for step in quote.explanation.steps)
    assert total == pytest.approx(quote.price, abs=0.005)
    blob = artefact.write(shape_model)
    again = artefact.read(blob, artefact.digest(blob))
    assert quote_stone(again, stone, 0.9).price == quote.price
    assert check(shape_model, complete.iloc[:1000]).holds
