"""The held-out fifth corrects the served ranges: measured on the bundled appraisals."""

from __future__ import annotations

import numpy as np
import pandas as pd

from diamond_model.enums import Inputs
from diamond_model.learning.training import (
    _held_out_scores,
    fit_pricing_model,
    holdout_mask,
    train,
)
from diamond_model.pricing.model import CAPACITIES


def test_the_held_out_fifth_brings_the_bundled_ranges_back_to_their_level(
    appraisals: pd.DataFrame,
) -> None:
    """Calibrated on out-of-fold errors alone, the bundled data's 90 % ranges held 92.4 % of the
    held-out fifth (and 92.1 % of the public appraisals outside the file). The stretch the held-out
    stones measure narrows both sides; the coverage reported, each half of the held-out stones
    stretched by the other half, is near 90 %; the served model carries the same stretch."""
    result = train(appraisals, 0.9, 0.2)
    below, above = result.metrics["stretch_below"], result.metrics["stretch_above"]
    assert 0.85 < below < 1.0
    assert 0.85 < above < 1.0
    assert 88.5 <= result.metrics["coverage"] <= 91.5

    held = appraisals.loc[holdout_mask(appraisals, 0.2)]
    scores = _held_out_scores(result.exam, held, 0.9)[Inputs.ALL]
    spread = result.exam.spreads[Inputs.ALL]
    as_calibrated = spread.stretched(1 / below, 1 / above)

    def inside(quantiles: tuple[float, float]) -> float:
        return float(((scores >= quantiles[0]) & (scores <= quantiles[1])).mean())

    before, after = inside(as_calibrated.quantiles(0.9)), inside(spread.quantiles(0.9))
    assert before > 0.915
    assert abs(after - 0.9) < abs(before - 0.9)

    small = tuple(c for c in CAPACITIES if c.name == result.model.capacity)
    unstretched, _ = fit_pricing_model(appraisals, capacities=small)
    low, high = unstretched.spreads[Inputs.ALL].quantiles(0.9)
    np.testing.assert_allclose(
        result.model.spreads[Inputs.ALL].quantiles(0.9), (below * low, above * high)
    )
