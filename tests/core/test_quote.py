"""The quote: intervals, missing inputs, extrapolation warnings, batch files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from diamond_model.intervals import calibrate
from diamond_model.quote import InvalidStoneError, neutralise_formulas, price_table, quote_stone
from diamond_model.schema import EXAMPLE_STONE
from diamond_model.training import PricingModel, evaluate

STONE = EXAMPLE_STONE


def test_quote_has_price_interval_and_explanation(pricing_model: PricingModel) -> None:
    quote = quote_stone(pricing_model, STONE, 0.9)
    assert quote.low < quote.price < quote.high
    assert quote.model == "all inputs"
    assert quote.missing == ()
    assert quote.warnings == ()
    assert {step.feature for step in quote.explanation.steps} == {
        "carat",
        "cut",
        "color",
        "clarity",
        "depth",
        "table",
        "measurements",
    }
    # Asymmetric in dollars: the range reaches further above the estimate than below.
    assert quote.high - quote.price > quote.price - quote.low


def test_missing_measurements_use_the_4c_model_and_widen_the_range(
    pricing_model: PricingModel,
) -> None:
    full = quote_stone(pricing_model, STONE, 0.9)
    partial = quote_stone(pricing_model, {**STONE, "depth": None, "x": ""}, 0.9)
    assert partial.missing == ("depth", "x")
    assert partial.model == "4Cs only"
    assert "because depth, x are missing" in partial.warnings[0]
    assert partial.high / partial.low > full.high / full.low


def test_interval_coverage_is_measured_on_unseen_stones(
    pricing_model: PricingModel, appraisals: pd.DataFrame
) -> None:
    metrics = evaluate(pricing_model, appraisals.iloc[4000:], 0.9)
    assert 85.0 <= metrics["coverage"] <= 95.0
    assert 85.0 <= metrics["coverage_4c_only"] <= 95.0


def test_extrapolation_is_flagged(pricing_model: PricingModel) -> None:
    quote = quote_stone(
        pricing_model, {"carat": 6.0, "cut": "Ideal", "color": "D", "clarity": "IF"}, 0.9
    )
    assert any(
        "is outside what the model has seen" in w and "extrapolation" in w for w in quote.warnings
    )


def test_invalid_stone_says_what_is_wrong(pricing_model: PricingModel) -> None:
    with pytest.raises(InvalidStoneError, match="'Superb' is not a cut grade") as caught:
        quote_stone(pricing_model, {**STONE, "cut": "Superb", "carat": -1}, 0.9)
    assert {field for field, _, _ in caught.value.problems} == {"cut", "carat"}


def test_price_table_keeps_every_row_in_order(pricing_model: PricingModel) -> None:
    data = (
        "carat,cut,color,clarity,price,note\n"
        "1.1,Ideal,H,SI2,99999,first\n"
        "1.1,Superb,H,SI2,1,second\n"
        "0.5,Good,E,VS1,1,third,extra\n"
        "0.7,good,e,vs1,,fourth\n"
    )
    table = price_table(pricing_model, data, 0.9)
    assert table["note"].tolist() == ["first", "second", "third", "fourth"]
    assert table["error"].tolist()[0] == "" and table["error"].tolist()[3] == ""
    assert "not a cut grade" in table["error"][1]
    assert "the row has 7 fields" in table["error"][2]
    assert np.isnan(table["price_estimate"][1]) and np.isnan(table["price_estimate"][2])
    assert table["price_low"][0] < table["price_estimate"][0] < table["price_high"][0]
    # The input price (99999) is ignored: the same stone without it gets the same estimate.
    alone = price_table(pricing_model, "carat,cut,color,clarity\n1.1,Ideal,H,SI2\n", 0.9)
    assert alone["price_estimate"][0] == table["price_estimate"][0]


def test_formulas_are_neutralised_for_spreadsheets() -> None:
    frame = pd.DataFrame(
        {
            "note": ["=HYPERLINK(1)", "+1+1", "-2+3", "@SUM(A1)", "plain", "-5"],
            "price": [1.0, 2, 3, 4, 5, 6],
        }
    )
    safe = neutralise_formulas(frame)
    assert safe["note"].tolist() == ["'=HYPERLINK(1)", "'+1+1", "'-2+3", "'@SUM(A1)", "plain", "-5"]
    assert safe["price"].tolist() == frame["price"].tolist()


@pytest.mark.parametrize("level", [0.5, 0.8, 0.9, 0.95])
def test_conformal_offsets_cover_the_requested_share(level: float) -> None:
    rng = np.random.default_rng(0)
    calibration = calibrate(rng.normal(0, 0.1, 5000), level)
    fresh = rng.normal(0, 0.1, 20000)
    inside = (fresh >= calibration.log_low) & (fresh <= calibration.log_high)
    assert inside.mean() == pytest.approx(level, abs=0.015)


def test_calibration_needs_residuals() -> None:
    with pytest.raises(ValueError, match="at least two calibration residuals"):
        calibrate(np.array([0.1]), 0.9)


def test_small_steps_can_be_grouped_and_still_add_up(pricing_model: PricingModel) -> None:
    from diamond_model.explain import group_small

    explanation = quote_stone(pricing_model, STONE, 0.9).explanation
    grouped = group_small(explanation, min_percent=5.0)
    assert grouped.steps[-1].feature == "other"
    assert all(abs(step.percent) >= 5.0 for step in grouped.steps[:-1])
    assert len(grouped.steps) < len(explanation.steps)
    total = grouped.base_price + sum(step.dollars for step in grouped.steps)
    assert total == pytest.approx(explanation.price, abs=0.011)
