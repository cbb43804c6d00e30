"""Questions people ask of a price and of the data: what if, carat curve, held-out diagnostics,
grade effects with carat held similar, and how a new batch differs from what the model knows."""

from __future__ import annotations

import numpy as np
import pandas as pd

from diamond_model.quote import quote_frame
from diamond_model.schema import GRADES, MEASUREMENTS, STONE_COLUMNS
from diamond_model.training import PricingModel, holdout_mask

PRICE_BANDS = (0, 1_000, 2_500, 5_000, 10_000, np.inf)
CARAT_BANDS = (0, 0.4, 0.7, 1.0, 1.5, 2.0, np.inf)
SHIFT_FLAG = 0.25  # population stability index above this is a large shift (industry rule of thumb)


def band_labels(edges: tuple[float, ...], unit: str) -> list[str]:
    labels = []
    for low, high in zip(edges[:-1], edges[1:], strict=True):
        if unit == "$":
            labels.append(f"${low:,.0f}+" if np.isinf(high) else f"${low:,.0f}–{high:,.0f}")
        else:
            labels.append(f"{low:g}+ ct" if np.isinf(high) else f"{low:g}–{high:g} ct")
    return labels


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
    if not variants:
        return pd.DataFrame(
            columns=["grade", "change", "from", "to", "price", "difference", "percent"]
        )
    batch = quote_frame(model, pd.DataFrame(variants), level, explain_prices=False)
    table = pd.DataFrame(rows)
    table["price"] = [q.price for q in batch.quotes]
    table["difference"] = table["price"] - base
    table["percent"] = 100 * table["difference"] / base
    return table


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


def holdout_predictions(
    model: PricingModel, appraisals: pd.DataFrame, holdout_fraction: float, level: float
) -> pd.DataFrame:
    """The champion's predictions on held-out appraisals (no model ever trains on them)."""
    held = appraisals.loc[holdout_mask(appraisals, holdout_fraction)].reset_index(drop=True)
    if held.empty:
        return held.assign(predicted=[], low=[], high=[], error_pct=[], inside=[], price_band=[])
    batch = quote_frame(model, held[list(STONE_COLUMNS)], level, explain_prices=False)
    out = held.copy()
    out["predicted"] = [q.price for q in batch.quotes]
    out["low"] = [q.low for q in batch.quotes]
    out["high"] = [q.high for q in batch.quotes]
    out["error_pct"] = 100 * (out["predicted"] - out["price"]) / out["price"]
    out["inside"] = (out["price"] >= out["low"]) & (out["price"] <= out["high"])
    out["price_band"] = pd.cut(out["price"], PRICE_BANDS, labels=band_labels(PRICE_BANDS, "$"))
    return out


def coverage_by_band(predictions: pd.DataFrame) -> pd.DataFrame:
    """Share of real prices inside the range, and median |error|, per price band."""
    grouped = predictions.groupby("price_band", observed=True)
    return pd.DataFrame(
        {
            "coverage": 100 * grouped["inside"].mean(),
            "median_abs_error_pct": grouped["error_pct"].apply(lambda e: e.abs().median()),
            "n": grouped.size(),
        }
    ).reset_index()


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


def population_stability(reference: pd.Series, batch: pd.Series, bins: int = 10) -> float:
    """PSI between two samples: ~0 same, > 0.25 a large shift."""
    if isinstance(reference.dtype, pd.CategoricalDtype):
        ref = reference.value_counts(normalize=True)
        new = batch.value_counts(normalize=True).reindex(ref.index, fill_value=0)
    else:
        edges = np.unique(np.quantile(reference.dropna(), np.linspace(0, 1, bins + 1)))
        edges[0], edges[-1] = -np.inf, np.inf
        ref = pd.Series(np.histogram(reference.dropna(), edges)[0]) / reference.notna().sum()
        new = pd.Series(np.histogram(batch.dropna(), edges)[0]) / max(batch.notna().sum(), 1)
    ref, new = ref.clip(lower=1e-4), new.clip(lower=1e-4)
    return float(np.sum((new - ref) * np.log(new / ref)))


def distribution_shift(reference: pd.DataFrame, batch: pd.DataFrame) -> pd.DataFrame:
    """Per feature: the typical value before and in the batch, the PSI, and whether it is large."""
    rows = []
    for column in ("carat", *GRADES, *MEASUREMENTS, "price"):
        if column not in batch or column not in reference or batch[column].isna().all():
            continue
        if column in GRADES:
            typical_before = str(reference[column].mode().iloc[0])
            typical_batch = str(batch[column].mode().iloc[0])
        else:
            typical_before = f"{reference[column].median():,.2f}"
            typical_batch = f"{batch[column].median():,.2f}"
        psi = population_stability(reference[column], batch[column])
        rows.append(
            {
                "feature": column,
                "typical before": typical_before,
                "typical in batch": typical_batch,
                "PSI": round(psi, 3),
                "large shift": psi > SHIFT_FLAG,
            }
        )
    return pd.DataFrame(rows)


def price_per_carat_by_weight(appraisals: pd.DataFrame, step: float = 0.05) -> pd.DataFrame:
    """Median price per carat in narrow weight bins: shows the jumps at popular sizes."""
    bins = np.floor(appraisals["carat"] / step) * step
    frame = appraisals.assign(
        weight=bins.round(2), price_per_carat=appraisals["price"] / appraisals["carat"]
    )
    table = frame.groupby("weight")["price_per_carat"].agg(["median", "size"]).reset_index()
    return table[table["size"] >= 5]


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
