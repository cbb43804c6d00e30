"""Questions people ask of a price and of the data: what if, the carat curve, the trade's price
grid, held-out diagnostics, what the model relies on, and the data's own structure."""

from __future__ import annotations

from typing import cast

import numpy as np
import pandas as pd

from diamond_model.data.schema import CLARITIES, COLORS, GRADES, SIZE_CONSTANT
from diamond_model.enums import Inputs
from diamond_model.learning.evaluation import CARAT_GROUPS, PRICE_GROUPS, band, coverage_by_group
from diamond_model.learning.training import holdout_mask, months_of, stone_columns
from diamond_model.pricing.confidence import LEVELS
from diamond_model.pricing.estimates import estimate_prices
from diamond_model.pricing.model import PricingModel
from diamond_model.pricing.quote import quote_frame
from diamond_model.pricing.shape import SHAPE_FEATURES
from diamond_model.words import band_labels

CARAT_BANDS = (0, 0.4, 0.7, 1.0, 1.5, 2.0, np.inf)
STEPS = {
    "size": ("carat", "x", "y", "z", *SHAPE_FEATURES),
    "cut": ("cut",),
    "color": ("color",),
    "clarity": ("clarity",),
    "depth": ("depth",),
    "table": ("table",),
}


def what_if(model: PricingModel, stone: dict[str, object], level: float) -> pd.DataFrame:
    """The price one grade down and one grade up on cut, color and clarity (others unchanged)."""
    base = quote_frame(model, pd.DataFrame([stone]), level, explain_prices=False).quotes[0].price
    rows, variants = [], []
    for grade, scale in GRADES.items():
        rank = scale.index(str(stone[grade]))
        for step, direction in ((-1, "one grade down"), (1, "one grade up")):
            if 0 <= rank + step < len(scale):
                rows.append(
                    {
                        "grade": grade,
                        "change": direction,
                        "from": scale[rank],
                        "to": scale[rank + step],
                    }
                )
                variants.append({**stone, grade: scale[rank + step]})
    columns = ["grade", "change", "from", "to", "price", "difference", "percent"]
    if not variants:
        return pd.DataFrame(columns=columns)
    batch = quote_frame(model, pd.DataFrame(variants), level, explain_prices=False)
    table = pd.DataFrame(rows)
    table["price"] = [q.price for q in batch.quotes]
    table["difference"] = table["price"] - base
    table["percent"] = 100 * table["difference"] / base
    return table[columns]


def carat_curve(
    model: PricingModel, stone: dict[str, object], level: float, carats: np.ndarray | None = None
) -> pd.DataFrame:
    """Price and range across weights for this stone's grades (4Cs model: size alone varies)."""
    low, high = model.domain.ranges["carat"]
    grid = (
        carats
        if carats is not None
        else np.round(np.arange(max(0.2, low), min(3.0, high) + 1e-9, 0.01), 2)
    )
    stones = pd.DataFrame({"carat": grid, **{g: stone[g] for g in GRADES}})
    batch = quote_frame(model, stones, level, explain_prices=False)
    return pd.DataFrame(
        {
            "carat": grid,
            "price": [q.price for q in batch.quotes],
            "low": [q.low for q in batch.quotes],
            "high": [q.high for q in batch.quotes],
        }
    )


def price_per_carat_grid(
    model: PricingModel, stone: dict[str, object], level: float
) -> pd.DataFrame:
    """The model's price per carat for every colour (rows, D first) and clarity (columns, IF
    first) at this stone's weight, cut and measurements: the grid jewellers read in trade price
    lists, whose cell for the stone's own grades is the stone's own price per carat."""
    colors, clarities = COLORS[::-1], CLARITIES[::-1]
    stones = pd.DataFrame(
        [{**stone, "color": color, "clarity": clarity} for color in colors for clarity in clarities]
    )
    batch = quote_frame(model, stones, level, explain_prices=False)
    values = np.array([q.price for q in batch.quotes]) / float(cast(float, stone["carat"]))
    return pd.DataFrame(
        values.reshape(len(colors), len(clarities)).round(0), index=colors, columns=clarities
    )


def holdout_predictions(
    model: PricingModel, appraisals: pd.DataFrame, holdout_fraction: float, level: float
) -> pd.DataFrame:
    """The model's predictions on held-out appraisals (no model ever trains on them), each at its
    own month's market level."""
    held = appraisals.loc[holdout_mask(appraisals, holdout_fraction)].reset_index(drop=True)
    found = estimate_prices(model, stone_columns(held), level, months=months_of(held))
    out = held.assign(predicted=found.price, low=found.low, high=found.high)
    out["error_pct"] = 100 * (out["predicted"] - out["price"]) / out["price"]
    out["inside"] = (out["price"] >= out["low"]) & (out["price"] <= out["high"])
    out["width"] = (out["high"] - out["low"]) / out["predicted"]
    out["price_band"] = band(out["price"], PRICE_GROUPS, "$")
    out["predicted_band"] = band(out["predicted"], PRICE_GROUPS, "$")
    out["carat_band"] = band(out["carat"], CARAT_GROUPS, "ct")
    out["confidence"] = [str(LEVELS[k]) for k in found.judged.level]
    return out


def coverage_by_band(predictions: pd.DataFrame, column: str = "price_band") -> pd.DataFrame:
    """Coverage, median relative width and count per band of `predictions`."""
    return coverage_by_group(predictions, column)


def signed_error_by_predicted_band(predictions: pd.DataFrame) -> pd.DataFrame:
    """Median signed error per band of the *predicted* price. Grouped by the actual price, any
    model seems to overprice cheap stones and underprice dear ones (a stone lands in the top
    band partly because its price came out high), a trend made by the grouping, not the model."""
    grouped = predictions.groupby("predicted_band", observed=True)["error_pct"]
    return pd.DataFrame(
        {"median_signed_error": grouped.median(), "n": grouped.size()}
    ).reset_index()


def reliance(model: PricingModel, appraisals: pd.DataFrame, sample: int = 1000) -> pd.DataFrame:
    """What the model relies on: the mean absolute contribution of each waterfall step (size,
    cut, colour, clarity, depth, table) over stored stones, in percent of the price — the same
    additive decomposition the waterfall shows, carat's power law included."""
    frame = appraisals.dropna(subset=["x", "y", "z"])
    frame = frame.sample(min(sample, len(frame)), random_state=0) if len(frame) else frame
    regressor = model.regressor(Inputs.ALL)
    found = estimate_prices(model, stone_columns(frame), 0.9, explain=True)
    phi = np.vstack([c for c in found.contributions if c is not None])
    features = list(regressor.features)
    rows = []
    for step, members in STEPS.items():
        effect = np.abs(sum(phi[:, features.index(m)] for m in members if m in features))
        rows.append({"step": step, "mean_abs_percent": float(100 * np.expm1(effect.mean()))})
    return pd.DataFrame(rows).sort_values("mean_abs_percent", ascending=False)


def price_steps(
    model: PricingModel, appraisals: pd.DataFrame, sizes: tuple[float, ...] = (0.5, 1.0, 1.5, 2.0)
) -> pd.DataFrame:
    """At each popular size, how much more a carat costs just at or above it than just below,
    in the data and in the model's prices for the same stones (median price per carat, stones
    within 0.05 ct below and 0.05 ct from the size)."""
    found = estimate_prices(model, stone_columns(appraisals), 0.9, months=months_of(appraisals))
    frame = appraisals.assign(
        actual=appraisals["price"] / appraisals["carat"], model=found.price / appraisals["carat"]
    )
    rows = []
    for size in sizes:
        below = frame[(frame["carat"] >= size - 0.05) & (frame["carat"] < size)]
        above = frame[(frame["carat"] >= size) & (frame["carat"] < size + 0.05)]
        if len(below) < 5 or len(above) < 5:
            rows.append({"size": size, "below": len(below), "above": len(above)})
            continue
        rows.append(
            {
                "size": size,
                "below": len(below),
                "above": len(above),
                "data_step_pct": 100 * (above["actual"].median() / below["actual"].median() - 1),
                "model_step_pct": 100 * (above["model"].median() / below["model"].median() - 1),
            }
        )
    return pd.DataFrame(rows)


def size_constant(appraisals: pd.DataFrame) -> tuple[float, float]:
    """(k, robust spread) of carat ≈ k · ((x + y) / 2)² · z, fitted as the median of the log
    ratio and 1.4826 × its median absolute deviation (see `schema.SIZE_CONSTANT`)."""
    frame = appraisals.dropna(subset=["x", "y", "z"])
    ratio = np.log(frame["carat"] / (((frame["x"] + frame["y"]) / 2) ** 2 * frame["z"]))
    centre = float(np.median(ratio))
    return float(np.exp(centre)), float(1.4826 * np.median(np.abs(ratio - centre)))


def size_disagreement(appraisals: pd.DataFrame) -> pd.Series:
    """Per appraisal: log(carat / carat implied by the millimetres) with the shipped constant."""
    implied = SIZE_CONSTANT * ((appraisals["x"] + appraisals["y"]) / 2) ** 2 * appraisals["z"]
    gap: pd.Series = np.log(appraisals["carat"] / implied)
    return gap


def grade_effect(appraisals: pd.DataFrame, grade: str) -> pd.DataFrame:
    """Median price per carat by grade within carat bands: a C's effect with size held similar."""
    frame = appraisals.assign(
        price_per_carat=appraisals["price"] / appraisals["carat"],
        carat_band=pd.cut(appraisals["carat"], CARAT_BANDS, labels=band_labels(CARAT_BANDS, "ct")),
    )
    table = (
        frame.groupby(["carat_band", grade], observed=True)["price_per_carat"]
        .agg(["median", "size"])
        .reset_index()
    )
    return table[table["size"] >= 5]


def price_per_carat_by_weight(
    appraisals: pd.DataFrame, step: float = 0.05, fewest: int = 5
) -> pd.DataFrame:
    """Median price per carat in narrow weight bins: shows the jumps at popular sizes.

    Every bin from the lightest to the heaviest is listed; one with fewer than `fewest` stones
    has no median (a gap in the line, not a bridge from its neighbours that would draw a step
    the data cannot show)."""
    bins = (np.floor(appraisals["carat"] / step + 1e-9) * step).round(2)
    frame = appraisals.assign(
        weight=bins, price_per_carat=appraisals["price"] / appraisals["carat"]
    )
    table = frame.groupby("weight")["price_per_carat"].agg(["median", "size"])
    every = np.round(np.arange(bins.min(), bins.max() + step / 2, step), 2)
    table = table.reindex(every).rename_axis("weight").reset_index()
    table["size"] = table["size"].fillna(0).astype(int)
    table.loc[table["size"] < fewest, "median"] = np.nan
    return table


def size_correlations(appraisals: pd.DataFrame) -> pd.DataFrame:
    """Pearson correlations among carat, x, y, z (and depth, table, price for context)."""
    return appraisals[["carat", "x", "y", "z", "depth", "table", "price"]].corr()


def median_carat_by_grade(appraisals: pd.DataFrame, grade: str) -> pd.DataFrame:
    """How big the stones of each grade are: the confounder behind raw price comparisons."""
    grouped = appraisals.groupby(grade, observed=True)
    return pd.DataFrame(
        {
            "stones": grouped.size(),
            "median carat": grouped["carat"].median(),
            "median price": grouped["price"].median(),
        }
    ).reset_index()
