"""The market level over time: a monthly index in log price, estimated with the stone model.

Prices move with the market while the stones stay what they are. The stone model explains a price
by the stone; what is left, month by month, is the level of the market. The index is the
penalised least-squares fit of the monthly median residuals, each month weighted by its number
of appraisals and tied to its neighbours by a random-walk penalty: a month with a few dozen
appraisals stands on its own, a month with three leans on the months around it. It is normalised
so that the appraisals' average level is zero, and quotes are priced at the latest month's level.

Why an index and not recency weighting (down-weighting old appraisals): weighting throws away what
old appraisals know about stones (the structure has not moved) to follow the level, and it lags a
sudden move by its half-life. The index keeps every appraisal for the structure and moves the
level at once when a month's evidence says so. Measured in `exploration.ipynb` §8 (a +15 % move in
6,000 of 10,000 appraisals): the index quotes unseen stones +0.3 % from the new level; raw prices
−5.5 %, a three-month half-life −3.6 %, a one-month half-life −1.0 % with the widest error around
its own level.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

# Penalty between adjacent months, in appraisals: a month with this many appraisals is pulled
# halfway towards its neighbours' level, one with ten times as many barely moves.
SMOOTHING = 30.0
# The median of n residuals varies as (π/2) σ² / n, against σ² / n for their mean.
MEDIAN_EFFICIENCY = np.pi / 2


def month_number(dates: np.ndarray) -> np.ndarray:
    """Months since year 0 (year · 12 + month - 1) of datetime64 dates."""
    months = np.asarray(dates, dtype="datetime64[M]").astype(np.int64)
    return months + 1970 * 12


def month_label(number: int) -> str:
    year, month = divmod(int(number), 12)
    return f"{year:04d}-{month + 1:02d}"


@dataclass(frozen=True)
class MarketIndex:
    """Log market level per month with data (relative to the average appraisal), its standard
    error and the number of appraisals behind it."""

    months: np.ndarray
    level: np.ndarray
    se: np.ndarray
    n: np.ndarray

    @classmethod
    def flat(cls, months: np.ndarray) -> MarketIndex:
        """No evidence of movement: level 0 in every month given."""
        unique, counts = np.unique(months, return_counts=True)
        zeros = np.zeros(len(unique))
        return cls(months=unique, level=zeros, se=zeros, n=counts)

    def at(self, months: np.ndarray) -> np.ndarray:
        """Level for each month: its own, or the latest earlier one (the first before any)."""
        position = np.searchsorted(self.months, np.asarray(months), side="right") - 1
        return self.level[np.clip(position, 0, len(self.months) - 1)]

    @property
    def latest_month(self) -> int:
        return int(self.months[-1])

    @property
    def latest_level(self) -> float:
        return float(self.level[-1])

    @property
    def latest_label(self) -> str:
        return month_label(self.latest_month)

    def frame(self) -> pd.DataFrame:
        """period, level (%), low and high of a 90 % band (%), appraisals: for charts and API."""
        half = 1.645 * self.se
        return pd.DataFrame(
            {
                "period": [month_label(m) for m in self.months],
                "level_pct": 100 * np.expm1(self.level),
                "low_pct": 100 * np.expm1(self.level - half),
                "high_pct": 100 * np.expm1(self.level + half),
                "appraisals": self.n.astype(int),
            }
        )


def fit_index(
    months: np.ndarray, residuals: np.ndarray, smoothing: float = SMOOTHING
) -> MarketIndex:
    """The index from each appraisal's month and its log residual under the stone model."""
    months = np.asarray(months, dtype=np.int64)
    unique, inverse, counts = np.unique(months, return_inverse=True, return_counts=True)
    if len(unique) == 1:
        flat = MarketIndex.flat(months)
        spread = robust_sd(residuals)
        return MarketIndex(
            months=flat.months,
            level=flat.level,
            se=np.array([np.sqrt(MEDIAN_EFFICIENCY) * spread / np.sqrt(counts[0])]),
            n=counts,
        )
    medians = np.array([np.median(residuals[inverse == k]) for k in range(len(unique))])
    weights = counts.astype(float)
    gaps = np.diff(unique).astype(float)
    # (W + λ L) I = W m, with L the random-walk penalty between neighbours (weaker across gaps).
    system = np.diag(weights)
    for k, gap in enumerate(gaps):
        tie = smoothing / gap
        system[k, k] += tie
        system[k + 1, k + 1] += tie
        system[k, k + 1] -= tie
        system[k + 1, k] -= tie
    inverse_system = np.linalg.inv(system)
    level = inverse_system @ (weights * medians)
    level -= np.average(level, weights=weights)
    variance = MEDIAN_EFFICIENCY * robust_sd(residuals - level[inverse]) ** 2
    se = np.sqrt(variance * np.diag(inverse_system))
    return MarketIndex(months=unique, level=level, se=se, n=counts)


def robust_sd(values: np.ndarray) -> float:
    """1.4826 × the median absolute deviation: the standard deviation, unmoved by outliers."""
    return float(1.4826 * np.median(np.abs(values - np.median(values))))
