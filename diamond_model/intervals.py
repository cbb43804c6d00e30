"""Split-conformal price intervals in log space: asymmetric in dollars, as prices are.

Residuals are log(actual) - log(predicted) on stones the model did not train on (out-of-fold), so
the interval [p·e^lo, p·e^hi] covers the configured share of new prices (exchangeability assumed).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class IntervalCalibration:
    """Log-space offsets to apply to a predicted price for a given coverage level."""

    level: float
    log_low: float
    log_high: float
    n_calibration: int

    def bounds(self, price: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
        price = np.asarray(price, dtype=float)
        return price * math.exp(self.log_low), price * math.exp(self.log_high)

    @property
    def relative(self) -> tuple[float, float]:
        """(-x %, +y %) around the estimate, e.g. (-11.2, +12.6)."""
        return 100 * (math.exp(self.log_low) - 1), 100 * (math.exp(self.log_high) - 1)


def calibrate(residuals: np.ndarray, level: float) -> IntervalCalibration:
    """Finite-sample split-conformal offsets, (1 - level) / 2 of the risk on each side."""
    residuals = np.asarray(residuals, dtype=float)
    if np.any(residuals[1:] < residuals[:-1]):
        residuals = np.sort(residuals)
    n = len(residuals)
    if n < 2:
        raise ValueError("at least two calibration residuals are needed for an interval")
    tail = (1.0 - level) / 2.0
    k_high = min(n, math.ceil((n + 1) * (1.0 - tail)))
    k_low = max(1, math.floor((n + 1) * tail))
    return IntervalCalibration(
        level=level,
        log_low=float(residuals[k_low - 1]),
        log_high=float(residuals[k_high - 1]),
        n_calibration=n,
    )
