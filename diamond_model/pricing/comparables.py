"""Comparable stones: the stored appraisals closest to a stone, as an appraiser would pick them."""

from __future__ import annotations

from typing import cast

import numpy as np
import pandas as pd

from diamond_model.data.schema import GRADES

CARAT_WINDOW = 0.25  # look at stones within ±25 % of the weight
GRADE_STEP_WEIGHT = 0.08  # one grade apart counts like an 8 % difference in weight


def closest(appraisals: pd.DataFrame, stone: dict[str, object], n: int = 8) -> pd.DataFrame:
    """The `n` appraisals nearest to `stone`: same or neighbouring grades, nearest carat.

    Distance = |log(carat ratio)| + 0.08 × (grade steps apart, summed over cut, color, clarity);
    only stones at most one grade apart on each scale and within ±25 % carat are considered.
    """
    if appraisals.empty:
        return appraisals.assign(distance=pd.Series(dtype=float))
    carat = float(cast(float, stone["carat"]))  # a stone's weight is a number
    log_gap = np.abs(np.log(appraisals["carat"].to_numpy(dtype=float) / carat))
    steps = np.zeros(len(appraisals))
    near = log_gap <= np.log1p(CARAT_WINDOW)
    for grade, scale in GRADES.items():
        wanted = scale.index(str(stone[grade]))
        codes = (
            appraisals[grade].cat.codes.to_numpy()
            if isinstance(appraisals[grade].dtype, pd.CategoricalDtype)
            else appraisals[grade].map({g: i for i, g in enumerate(scale)}).to_numpy()
        )
        apart = np.abs(codes - wanted)
        near &= apart <= 1
        steps += apart
    chosen = appraisals.loc[near].assign(distance=(log_gap + GRADE_STEP_WEIGHT * steps)[near])
    order = ["distance", "id"] if "id" in chosen else ["distance"]
    nearest: pd.DataFrame = chosen.sort_values(order).head(n)
    return nearest
