"""The quote: conflicting inputs, set-aside measurements, confidence, fixed-order explanations
that add up, and batch files with their output columns."""

from __future__ import annotations

import itertools
import re
from math import factorial

import numpy as np
import pandas as pd
import pytest

from diamond_model.data.reading import neutralise_formulas
from diamond_model.data.schema import EXAMPLE_STONE
from diamond_model.enums import Confidence, Inputs
from diamond_model.pricing.model import PricingModel
from diamond_model.pricing.quote import OUTPUT_COLUMNS, InvalidStoneError, price_table, quote_stone

STONE = EXAMPLE_STONE
# 1.00 ct Very Good G VS1 with the millimetres of a 0.90 ct stone (the example).
SMALL_MM = {"depth": 62.0, "table": 57.0, "x": 6.10, "y": 6.15, "z": 3.80}
FOUR_C = {"carat": 1.0, "cut": "Very Good", "color": "G", "clarity": "VS1"}


def test_quote_has_price_range_confidence_and_explanation(pricing_model: PricingModel) -> None:
    quote = quote_stone(pricing_model, STONE, 0.9)
    assert quote.low < quote.price < quote.high
    assert quote.inputs_used == Inputs.ALL
    assert quote.missing == () and quote.set_aside == () and quote.warnings == ()
    assert quote.confidence == Confidence.HIGH
    assert "of our appraisals are H SI2 stones weighing 1–1.5 ct" in quote.reasons[0]
    assert quote.implied_carat == pytest.approx(1.1, abs=0.02)
    assert quote.price_per_carat == pytest.approx(quote.price / 1.1, abs=0.01)


def test_millimetres_of_a_smaller_stone_are_set_aside_not_priced(
    pricing_model: PricingModel,
) -> None:
    conflicting = quote_stone(pricing_model, {**FOUR_C, **SMALL_MM}, 0.9)
    four_c = quote_stone(pricing_model, FOUR_C, 0.9)
    with_own_mm = quote_stone(
        pricing_model, {**FOUR_C, "depth": 61.9, "table": 57, "x": 6.37, "y": 6.41, "z": 3.96}, 0.9
    )
    # The conflicting millimetres do not pull the price: it is the 4Cs price, with a wider range.
    assert conflicting.price == four_c.price
    assert conflicting.inputs_used == Inputs.FOUR_C
    assert set(conflicting.set_aside) == {"x", "y", "z"}
    assert conflicting.confidence == Confidence.MEDIUM
    assert any("they imply 0.87 ct" in reason for reason in conflicting.reasons)
    assert any(
        "the millimetres imply 0.87 ct, 13 % less than the 1 ct weighed" in w
        for w in conflicting.warnings
    )
    assert (conflicting.high - conflicting.low) > 1.2 * (four_c.high - four_c.low)
    # Consistent millimetres are used, and land near the 4Cs price (not 14 % below it).
    assert with_own_mm.inputs_used == Inputs.ALL
    assert abs(with_own_mm.price / four_c.price - 1) < 0.08


def test_a_conflict_is_known_by_its_kind_not_by_its_wording(
    pricing_model: PricingModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The confidence and the range follow a conflict's kind and figure: a reworded note (here,
    every note's sentence replaced) still widens the range and says what the millimetres imply.
    (The quote used to parse the note's sentence, so rewording it dropped the warning.)"""
    from dataclasses import replace

    from diamond_model.data import validation

    real = validation.screen

    def reworded(columns):
        screened = real(columns)
        return replace(screened, notes=[n._replace(reason="(reworded)") for n in screened.notes])

    monkeypatch.setattr(validation, "screen", reworded)
    conflicting = quote_stone(pricing_model, {**FOUR_C, **SMALL_MM}, 0.9)
    assert any("they imply 0.87 ct" in reason for reason in conflicting.reasons)
    assert conflicting.confidence == Confidence.MEDIUM
    assert set(conflicting.set_aside) == {"x", "y", "z"}


def test_millimetres_of_a_bigger_stone_are_set_aside_too(pricing_model: PricingModel) -> None:
    small = {"carat": 0.3, "cut": "Ideal", "color": "G", "clarity": "VS1"}
    quote = quote_stone(pricing_model, {**small, "x": 9.0, "y": 9.0, "z": 5.5}, 0.9)
    assert quote.price == quote_stone(pricing_model, small, 0.9).price
    assert quote.implied_carat == pytest.approx(2.72, abs=0.01)
    assert any("9.1 times the 0.3 ct weighed" in w for w in quote.warnings)


def test_the_lightest_melee_is_told_in_words_without_an_overflow(
    pricing_model: PricingModel,
) -> None:
    """The API's schema test sent the smallest float as carat with millimetres: an overflow.
    Below the smallest melee (0.001 ct) a weight is now refused; at it, the words still hold."""
    import warnings

    stone = {"carat": 0.001, "cut": "Ideal", "color": "G", "clarity": "VS1"}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        quote = quote_stone(pricing_model, {**stone, "x": 4.3, "y": 4.3, "z": 2.7}, 0.9)
    assert any("305.3 times the 0.001 ct weighed" in w for w in quote.warnings), quote.warnings
    assert quote.price > 0 and not any("inf" in w for w in quote.warnings)
    for dust in (5e-324, 0.0001):
        with pytest.raises(InvalidStoneError, match="Carat must be at least 0.001 ct"):
            quote_stone(pricing_model, {**stone, "carat": dust}, 0.9)


@pytest.mark.parametrize(
    ("measurements", "set_aside", "says"),
    [
        ({"x": 0, "y": 6.4, "z": 3.9}, ("x",), "Length x not used: it must be more than 0 mm"),
        (
            {"x": 6.4, "y": 6.45},
            (),
            "priced from the carat and the grades alone because the total depth is missing",
        ),
        ({"x": "six", "y": 6.4, "z": 3.9}, ("x",), "Length x 'six' not used"),
    ],
)
def test_unusable_measurements_never_refuse_a_stone_with_valid_4cs(
    pricing_model: PricingModel, measurements: dict, set_aside: tuple, says: str
) -> None:
    quote = quote_stone(pricing_model, {**FOUR_C, **measurements}, 0.9)
    assert quote.price == quote_stone(pricing_model, FOUR_C, 0.9).price
    assert quote.set_aside == set_aside
    assert any(says in w for w in quote.warnings), quote.warnings


def test_a_depth_that_disagrees_with_the_millimetres_is_set_aside(
    pricing_model: PricingModel,
) -> None:
    quote = quote_stone(pricing_model, {**STONE, "depth": 58.0}, 0.9)
    assert quote.inputs_used == Inputs.ALL, "the millimetres agree with the carat: still used"
    assert quote.set_aside == ("depth",)
    assert any("depth 58 % disagrees with the millimetres" in w for w in quote.warnings)
    assert quote.confidence == Confidence.MEDIUM
    consistent = quote_stone(pricing_model, {k: v for k, v in STONE.items() if k != "depth"}, 0.9)
    width, usual = quote.high - quote.low, consistent.high - consistent.low
    assert width > 1.2 * usual, "disagreeing inputs widen the range (by a quarter)"


def test_only_a_bad_c_leaves_a_stone_unpriced(pricing_model: PricingModel) -> None:
    with pytest.raises(InvalidStoneError, match="'Superb' is not a cut grade") as caught:
        quote_stone(pricing_model, {**STONE, "cut": "Superb", "carat": -1, "x": 0}, 0.9)
    assert {field for field, _, _ in caught.value.problems} == {"cut", "carat"}


def test_a_stone_far_outside_the_data_is_low_confidence_with_a_wider_range(
    pricing_model: PricingModel,
) -> None:
    rare = quote_stone(
        pricing_model, {"carat": 4.0, "cut": "Ideal", "color": "D", "clarity": "IF"}, 0.9
    )
    common = quote_stone(
        pricing_model, {"carat": 1.0, "cut": "Ideal", "color": "G", "clarity": "VS2"}, 0.9
    )
    assert rare.confidence == Confidence.LOW
    assert any(
        "none of our appraisals is a D IF stone weighing over 2 ct" in r for r in rare.reasons
    )
    assert (rare.high - rare.low) / rare.price > 1.4 * (common.high - common.low) / common.price
    assert rare.extrapolated and not common.extrapolated
    heavy = quote_stone(
        pricing_model, {"carat": 8.0, "cut": "Ideal", "color": "G", "clarity": "VS2"}, 0.9
    )
    assert heavy.confidence == Confidence.LOW
    assert any("the price is an extrapolation" in w for w in heavy.warnings)
    assert heavy.extrapolated


def test_a_thin_base_of_similar_stones_is_medium_confidence(pricing_model: PricingModel) -> None:
    quote = quote_stone(
        pricing_model, {"carat": 1.2, "cut": "Ideal", "color": "D", "clarity": "VVS1"}, 0.9
    )
    assert quote.confidence == Confidence.MEDIUM
    assert any(
        re.fullmatch(
            r"only (1 of our appraisals is a D VVS1 stone|\d of our appraisals are "
            r"D VVS1 stones) weighing 1–1\.5 ct",
            r,
        )
        for r in quote.reasons
    ), quote.reasons


# ---- explanations -----------------------------------------------------------------------------


def test_steps_come_in_a_fixed_order_and_add_up_to_the_cent(
    pricing_model: PricingModel, appraisals: pd.DataFrame
) -> None:
    stones = appraisals.iloc[4000:4150].drop(columns=["price", "appraised_on"])
    for stone in stones.astype(object).to_dict("records"):
        quote = quote_stone(pricing_model, stone, 0.9)
        steps = quote.explanation.steps
        assert [s.feature for s in steps[:4]] == ["size", "cut", "color", "clarity"]
        assert all(s.feature in ("depth", "table", "market", "other") for s in steps[4:])
        assert all(abs(s.percent) >= 1.0 for s in steps[4:] if s.feature != "other")
        total = round(quote.explanation.base_price + sum(s.dollars for s in steps), 2)
        assert total == quote.price == steps[-1].price_after
        size = steps[0]
        assert round(sum(p.dollars for p in size.parts), 2) == size.dollars
        assert size.parts[0].feature == "carat"


def test_the_starting_point_is_a_concrete_typical_stone(pricing_model: PricingModel) -> None:
    explanation = quote_stone(pricing_model, STONE, 0.9).explanation
    assert explanation.base_words.startswith("a typical stone in our appraisals (0.7")
    assert " mm, depth " in explanation.base_words
    assert explanation.sentences[0].startswith("Starting point: a typical stone")


def test_a_better_grade_than_the_typical_stone_never_takes_money_off(
    pricing_model: PricingModel,
) -> None:
    typical = pricing_model.typical
    for color in ("D", "E", "F"):
        quote = quote_stone(
            pricing_model, {"carat": 1.0, "cut": "Ideal", "color": color, "clarity": "IF"}, 0.9
        )
        steps = {s.feature: s for s in quote.explanation.steps}
        assert steps["color"].dollars > 0 and steps["clarity"].dollars > 0, typical


def _on_a_split(pricing_model: PricingModel, column: int, near: float) -> float:
    """A split of the full model's trees on `column` that single precision rounds down, so the
    value equal to it goes left in LightGBM (x <= threshold) but right in float32 arithmetic."""
    splits = pricing_model.explainer(Inputs.ALL).splits[column][0]
    below = splits[np.float32(splits).astype(float) < splits]
    return float(below[np.abs(below - near).argmin()])


@pytest.mark.parametrize("on_split", [None, "carat", "x"])
def test_contributions_are_the_exact_shapley_values_against_the_typical_stone(
    pricing_model: PricingModel, on_split: str | None
) -> None:
    """Brute force: the average marginal effect over every order of the nine inputs; also for
    stones sitting exactly on a split, where shap's single precision alone would go astray."""
    explainer = pricing_model.explainer(Inputs.ALL)
    regressor = pricing_model.regressor(Inputs.ALL)
    reference = pricing_model.reference(Inputs.ALL)
    stone = np.array([1.1, 4, 2, 1, 62.0, 55.0, 6.61, 6.65, 4.11])
    if on_split is not None:
        column = list(regressor.features).index(on_split)
        stone[column] = _on_a_split(pricing_model, column, stone[column])
    n = len(stone)

    def value(members: tuple[int, ...]) -> float:
        hybrid = reference.copy()
        hybrid[list(members)] = stone[list(members)]
        return float(regressor.predict_log_matrix(hybrid[None, :])[0])

    values = {s: value(s) for k in range(n + 1) for s in itertools.combinations(range(n), k)}
    exact = np.zeros(n)
    for i in range(n):
        for members, v in values.items():
            if i not in members:
                weight = factorial(len(members)) * factorial(n - len(members) - 1) / factorial(n)
                exact[i] += weight * (values[tuple(sorted((*members, i)))] - v)
    log_price, phi = explainer.contributions(stone[None, :])
    np.testing.assert_allclose(phi[0], exact, atol=1e-7)
    assert explainer.base_log + phi[0].sum() == pytest.approx(log_price[0], abs=1e-12)


# ---- files ------------------------------------------------------------------------------------


def test_price_table_keeps_every_row_in_order_with_the_output_columns(
    pricing_model: PricingModel,
) -> None:
    data = (
        "carat,cut,color,clarity,x,y,z,price,note\n"
        "1.1,Ideal,H,SI2,6.61,6.65,4.11,99999,first\n"
        "1.1,Superb,H,SI2,,,,1,second\n"
        "0.5,Good,E,VS1,,,,1,third,extra\n"
        "1.0,good,g,vs1,6.1,6.15,3.8,,fourth\n"
    )
    table = price_table(pricing_model, data, 0.9)
    assert list(table.columns[-len(OUTPUT_COLUMNS) :]) == list(OUTPUT_COLUMNS)
    assert table["note"].tolist() == ["first", "second", "third", "fourth"]
    assert table["error"].tolist()[0] == "" and table["error"].tolist()[3] == ""
    assert "not a cut grade" in table["error"][1]
    assert "the row has 10 fields but the header has 9: check" in table["error"][2]
    assert np.isnan(table["price_estimate"][1]) and table["confidence"][1] == ""
    assert table["confidence"][0] == "high"
    assert (
        table["warnings"][0]
        == f"table % not given: a typical {pricing_model.typical['table']:g} % was used"
    )
    assert table["confidence"][3] == "medium"
    assert "the millimetres imply 0.87 ct" in table["warnings"][3]
    assert all(
        not part.startswith(" ") and ";" not in part for part in table["warnings"][3].split("; ")
    ), "warnings are sentences separated by '; '"
    alone = price_table(
        pricing_model, "carat,cut,color,clarity,x,y,z\n1.1,Ideal,H,SI2,6.61,6.65,4.11\n", 0.9
    )
    assert alone["price_estimate"][0] == table["price_estimate"][0], "the input price is ignored"


def test_a_large_file_gets_exactly_the_quotes_of_its_stones_one_by_one(
    pricing_model: PricingModel, appraisals: pd.DataFrame
) -> None:
    """Files take a quicker path (no Quote object for rows that need no words): every row must
    read as the same stone quoted alone, warnings and confidence included."""
    rng = np.random.default_rng(3)
    stones = appraisals.iloc[rng.permutation(len(appraisals))[:300]].reset_index(drop=True)
    stones = stones.drop(columns=["price", "appraised_on"]).astype(object)
    stones.loc[0:9, "table"] = None  # assumed table
    stones.loc[10:19, ["x", "y", "z"]] = None  # 4Cs only
    stones.loc[20:29, "carat"] = 9.5  # beyond the heaviest
    stones.loc[30:39, "x"] = 3.0  # millimetres that disagree
    stones.loc[40:44, "cut"] = "Superb"  # refused
    stones.loc[45:49, "depth"] = 79.0  # beyond the depths seen
    text = stones.to_csv(index=False)
    table = price_table(pricing_model, text, 0.9)
    assert len(table) == 300
    for position, row in stones.iterrows():
        stone = {k: v for k, v in row.items() if v is not None and v == v}
        got = table.iloc[position]
        if position in range(40, 45):
            assert "not a cut grade" in got["error"] and np.isnan(got["price_estimate"])
            continue
        quote = quote_stone(pricing_model, stone, 0.9, explain_prices=False)
        assert (got["price_estimate"], got["price_low"], got["price_high"]) == (
            quote.price,
            quote.low,
            quote.high,
        ), position
        assert got["confidence"] == str(quote.confidence), position
        assert got["warnings"] == "; ".join(quote.warnings), position
        assert got["error"] == ""
    words = table["warnings"]
    assert words.str.startswith("only ").any(), "some stones have few like them"
    assert (words == "").any() and words.str.contains("extrapolation").iloc[20:30].all()


def test_formulas_are_neutralised_in_cells_and_headers() -> None:
    frame = pd.DataFrame(
        {
            "note": ["=HYPERLINK(1)", "+1+1", "-2+3", "@SUM(A1)", "plain", "-5"],
            "=cmd|' /C calc'!A0": [1.0, 2, 3, 4, 5, 6],
        }
    )
    safe = neutralise_formulas(frame)
    assert safe["note"].tolist() == ["'=HYPERLINK(1)", "'+1+1", "'-2+3", "'@SUM(A1)", "plain", "-5"]
    assert list(safe.columns) == ["note", "'=cmd|' /C calc'!A0"]
    assert safe.iloc[:, 1].tolist() == [1.0, 2, 3, 4, 5, 6]


def contrast_on_white(colour: str) -> float:
    """WCAG 2 contrast ratio of a #rrggbb colour against white."""

    def linear(channel: int) -> float:
        c = channel / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (int(colour[k : k + 2], 16) for k in (1, 3, 5))
    luminance = 0.2126 * linear(r) + 0.7152 * linear(g) + 0.0722 * linear(b)
    return 1.05 / (luminance + 0.05)


def test_the_waterfall_reads_at_a_glance(pricing_model: PricingModel) -> None:
    from diamond_model.reports.figures import waterfall

    quote = quote_stone(pricing_model, EXAMPLE_STONE, 0.9)
    figure = waterfall(quote.explanation)
    [bars] = figure.data
    assert bars.orientation == "h", "horizontal bars: labels read left to right"
    assert [label.replace("<br>", " ") for label in bars.y[1:5]] == [
        f"{step.label}: {step.value}" for step in quote.explanation.steps[:4]
    ]
    assert list(bars.y[1:5])[0].startswith("Size") and bars.y[0].startswith("Typical stone")
    lines = [line for label in bars.y for line in label.split("<br>")]
    assert max(map(len, lines)) <= 18, "no label squeezes the bars"
    assert [step.label for step in quote.explanation.steps[:4]] == [
        "Size",
        "Cut",
        "Colour",
        "Clarity",
    ], "spelt as the inputs are"
    sizes = [bars.textfont.size, figure.layout.font.size]
    colours = [bars.textfont.color]
    for axis in (figure.layout.xaxis, figure.layout.yaxis):
        sizes += [axis.tickfont.size or figure.layout.font.size]
        colours += [axis.tickfont.color, axis.title.font.color]
    assert min(sizes) >= 12, sizes
    assert all(colour is not None for colour in colours), "no colour left to the theme"
    assert min(contrast_on_white(c) for c in colours) >= 4.5, colours
