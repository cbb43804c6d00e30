"""Monotonicity proved on a trained model: no better grade and no heavier stone priced lower.

LightGBM's monotone constraints hold by construction for its "basic" and "intermediate" methods;
the "advanced" one, which the model used before, leaked (a study raised one stone's cut from Good
to Very Good and its price fell by 0.025 %). A customer who sees a better grade priced lower stops
trusting the tool, so every candidate is checked before it may serve: each stone it learned from,
and a grid over the weights and every grade, with each grade raised one step and the carat raised
by 0.01 and by 0.1 ct, priced by both regressors (with the millimetres, and from the carat and
grades alone). One price that falls is one violation; a model with any is not servable
(`versions.VersionInfo.unservable_reason`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from diamond_model.data.schema import CLARITIES, COLORS, CUTS, GRADES, SIZE_CONSTANT, STONE_COLUMNS
from diamond_model.pricing.model import PriceModel, PricingModel

CARAT_STEPS = (0.01, 0.1)
GRID_CARATS = 16
# A fall smaller than this (in log price: a millionth of a percent) is floating-point rounding
# between two tree sums, not a price that went down.
ROUNDING = 1e-9
GRADES_ORDER = ("carat", "cut", "color", "clarity")


@dataclass(frozen=True)
class Monotonicity:
    """How many raised-grade and raised-carat comparisons were made, how many lowered the price,
    and the largest fall in words."""

    checked: int
    violations: int
    worst: str | None = None
    largest: float | None = None  # the largest fall, as a fraction of the price

    @property
    def holds(self) -> bool:
        return self.violations == 0

    def figures(self) -> dict[str, float]:
        """For the version's stored metrics."""
        return {
            "monotone_checked": float(self.checked),
            "monotone_violations": float(self.violations),
        }

    def refusal(self) -> str:
        return (
            f"not promoted: a better grade or a heavier stone is priced lower in "
            f"{self.violations:,} of {self.checked:,} comparisons (the largest: {self.worst}); a "
            "model that does this is never served"
        )


def grid(model: PricingModel) -> pd.DataFrame:
    """Stones across the weights the model has seen and every cut, colour and clarity, with the
    typical proportions (depth, table) and the millimetres a round stone of that weight has."""
    low, high = model.domain.ranges.get("carat", (0.2, 3.0))
    carats = np.unique(np.round(np.geomspace(max(low, 0.2), high, GRID_CARATS), 2))
    depth, table = model.typical["depth"], model.typical["table"]
    index = pd.MultiIndex.from_product([carats, CUTS, COLORS, CLARITIES], names=[*GRADES_ORDER])
    stones = index.to_frame(index=False)
    # carat = k · d² · z with z = depth · d: d from the weight, for a stone whose size agrees.
    diameter = np.cbrt(stones["carat"] / (SIZE_CONSTANT * depth / 100))
    return stones.assign(
        depth=depth, table=table, x=diameter, y=diameter, z=diameter * depth / 100
    )[list(STONE_COLUMNS)]


def _raised(stones: pd.DataFrame) -> list[tuple[str, pd.DataFrame, np.ndarray | None]]:
    """(what changed, the changed stones, which rows could change) for each step up."""
    out: list[tuple[str, pd.DataFrame, np.ndarray | None]] = []
    for grade, scale in GRADES.items():
        rank = stones[grade].map({g: r for r, g in enumerate(scale)}).to_numpy()
        can = rank < len(scale) - 1
        up = np.minimum(rank + 1, len(scale) - 1)
        out.append((grade, stones.assign(**{grade: np.asarray(scale, dtype=object)[up]}), can))
    for step in CARAT_STEPS:
        out.append((f"carat +{step:g}", stones.assign(carat=stones["carat"] + step), None))
    return out


def _words(stone: pd.Series, change: str, raised: pd.Series, fall: float) -> str:
    what = f"{stone['carat']:.2f} ct {stone['cut']} {stone['color']} {stone['clarity']}"
    if change.startswith("carat"):
        how = f"{change.replace('carat ', '')} ct on a {what}"
    else:
        how = f"the {change} of a {what} raised to {raised[change]}"
    return f"{how} lowers its price by {100 * fall:.4f} %"


def count(regressor: PriceModel, stones: pd.DataFrame) -> Monotonicity:
    """One regressor's comparisons over `stones` (the four grades as text)."""
    checked, violations = 0, 0
    worst: tuple[float, str] | None = None
    base = regressor.predict_log(stones)
    for change, raised, can in _raised(stones):
        fall = base - regressor.predict_log(raised)
        if can is not None:
            fall = np.where(can, fall, -np.inf)
        checked += len(stones) if can is None else int(can.sum())
        bad = fall > ROUNDING
        violations += int(bad.sum())
        if bad.any():
            k = int(np.argmax(fall))
            size = float(-np.expm1(-fall[k]))
            if worst is None or size > worst[0]:
                worst = (size, _words(stones.iloc[k], change, raised.iloc[k], size))
    return Monotonicity(
        checked, violations, None if worst is None else worst[1], worst and worst[0]
    )


def check(model: PricingModel, appraisals: pd.DataFrame) -> Monotonicity:
    """Every appraisal the model learned from and the grid, each change priced by both of the
    model's regressors."""
    stones = pd.concat([appraisals[list(STONE_COLUMNS)], grid(model)], ignore_index=True)
    stones = stones.astype({g: object for g in GRADES})
    parts = [count(regressor, stones) for regressor in (model.full, model.reduced)]
    worst = max(parts, key=lambda part: part.largest or 0.0)
    return Monotonicity(
        sum(p.checked for p in parts),
        sum(p.violations for p in parts),
        worst.worst,
        worst.largest,
    )
