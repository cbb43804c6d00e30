"""Honest model evaluation: repeated k-fold comparison, learning curve, interval calibration.

These are the numbers behind the README's CV table, the notebook and the performance page.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.model_selection import KFold, RepeatedKFold

from diamond_model.intervals import calibrate
from diamond_model.metrics import coverage, price_metrics
from diamond_model.model import SHIPPED_MODEL, PriceModel, candidate_models
from diamond_model.schema import STONE_COLUMNS
from diamond_model.training import out_of_fold_residuals

REPORTED = ("mape", "mae", "rmse", "r2", "median_ape", "within_10pct")


def compare_models(
    appraisals: pd.DataFrame, n_splits: int = 5, n_repeats: int = 1, seed: int = 0
) -> pd.DataFrame:
    """One row per (model, fold) with price metrics on the fold's unseen appraisals."""
    stones = appraisals[list(STONE_COLUMNS)].reset_index(drop=True)
    prices = appraisals["price"].to_numpy(dtype=float)
    splitter = RepeatedKFold(n_splits=n_splits, n_repeats=n_repeats, random_state=seed)
    rows = []
    for fold, (train_idx, test_idx) in enumerate(splitter.split(stones)):
        for name, estimator in candidate_models().items():
            fitted = clone(estimator).fit(stones.iloc[train_idx], prices[train_idx])
            predicted = fitted.predict(stones.iloc[test_idx])
            rows.append({"model": name, "fold": fold, **price_metrics(prices[test_idx], predicted)})
    return pd.DataFrame(rows)


def summarise(folds: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard deviation across folds, best MAPE first; marks the shipped model."""
    grouped = folds.groupby("model")[list(REPORTED)].agg(["mean", "std"])
    grouped.columns = [f"{metric}_{stat}" for metric, stat in grouped.columns]
    grouped = grouped.sort_values("mape_mean")
    grouped["shipped"] = grouped.index == SHIPPED_MODEL
    return grouped


def learning_curve(
    appraisals: pd.DataFrame,
    sizes: tuple[int, ...] = (250, 500, 1000, 2000, 3000),
    n_splits: int = 5,
    seed: int = 0,
) -> pd.DataFrame:
    """Held-out MAPE and MAE of the shipped model trained on growing subsets of the data."""
    stones = appraisals[list(STONE_COLUMNS)].reset_index(drop=True)
    prices = appraisals["price"].to_numpy(dtype=float)
    rng = np.random.default_rng(seed)
    rows = []
    for fold, (train_idx, test_idx) in enumerate(
        KFold(n_splits, shuffle=True, random_state=seed).split(stones)
    ):
        order = rng.permutation(train_idx)
        # The requested sizes that fit, then the whole training fold as the last point.
        for size in [s for s in sizes if s < len(train_idx)] + [len(train_idx)]:
            subset = order[:size]
            model = PriceModel().fit(stones.iloc[subset], prices[subset])
            metrics = price_metrics(prices[test_idx], model.predict(stones.iloc[test_idx]))
            rows.append(
                {"train_size": size, "fold": fold, "mape": metrics["mape"], "mae": metrics["mae"]}
            )
    return pd.DataFrame(rows)


def interval_calibration(
    appraisals: pd.DataFrame,
    levels: tuple[float, ...] = (0.5, 0.8, 0.9, 0.95),
    seed: int = 0,
) -> pd.DataFrame:
    """Nominal vs measured coverage: calibrate on one half, measure on the other, both ways."""
    stones = appraisals[list(STONE_COLUMNS)].reset_index(drop=True)
    prices = appraisals["price"].to_numpy(dtype=float)
    halves = KFold(2, shuffle=True, random_state=seed).split(stones)
    rows = []
    for half, (fit_idx, test_idx) in enumerate(halves):
        fit_stones, fit_prices = stones.iloc[fit_idx], prices[fit_idx]
        residuals = out_of_fold_residuals(PriceModel(), fit_stones, fit_prices, seed)
        model = PriceModel().fit(fit_stones, fit_prices)
        predicted = model.predict(stones.iloc[test_idx])
        for level in levels:
            low, high = calibrate(residuals, level).bounds(predicted)
            rows.append(
                {
                    "half": half,
                    "level": 100 * level,
                    "coverage": coverage(prices[test_idx], low, high),
                    "mean_width_pct": float(100 * np.mean((high - low) / predicted)),
                }
            )
    return (
        pd.DataFrame(rows).groupby("level", as_index=False)[["coverage", "mean_width_pct"]].mean()
    )
