"""Honest model evaluation: repeated k-fold comparisons (paired), learning curve, and the ranges
compared by coverage in every group that matters to a jeweller.

These are the numbers behind README's tables, the notebook and the Performance page.
"""

from __future__ import annotations

import math
from typing import cast

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.model_selection import KFold, RepeatedKFold

from diamond_model.data.schema import STONE_COLUMNS
from diamond_model.learning.metrics import price_metrics
from diamond_model.learning.training import out_of_fold
from diamond_model.pricing.confidence import LEVELS, Domain, judge
from diamond_model.pricing.intervals import SPREAD_FEATURES, conformal_quantiles, fit_spread
from diamond_model.pricing.model import SHIPPED_MODEL, PriceModel, candidate_models, encode
from diamond_model.words import band_labels

Folds = list[tuple[np.ndarray, np.ndarray]]  # (training rows, held-out rows) of each fold

REPORTED = ("mape", "mae", "rmse", "r2", "median_ape", "within_10pct")
CARAT_GROUPS = (0, 0.5, 1.0, 1.5, 2.0, np.inf)
PRICE_GROUPS = (0, 1_000, 2_500, 5_000, 10_000, np.inf)


def _complete(appraisals: pd.DataFrame) -> pd.DataFrame:
    """Rows with every measurement (the full regressor's domain), index reset."""
    return appraisals.dropna(subset=list(STONE_COLUMNS)).reset_index(drop=True)


def compare_models(
    appraisals: pd.DataFrame, n_splits: int = 5, n_repeats: int = 1, seed: int = 0
) -> pd.DataFrame:
    """One row per (model, fold) with price metrics on the fold's unseen appraisals."""
    frame = _complete(appraisals)
    stones = frame[list(STONE_COLUMNS)]
    prices = frame["price"].to_numpy(dtype=float)
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
    pairs = cast(list[tuple[str, str]], list(grouped.columns))  # (metric, statistic)
    grouped.columns = [f"{metric}_{stat}" for metric, stat in pairs]
    grouped = grouped.sort_values("mape_mean")
    grouped["shipped"] = grouped.index == SHIPPED_MODEL
    return grouped


def paired(folds: pd.DataFrame, first: str, second: str, metric: str = "mape") -> pd.DataFrame:
    """Fold by fold, `first` minus `second` (negative: `first` is better on that fold)."""
    wide = folds.pivot(index="fold", columns="model", values=metric)
    return pd.DataFrame(
        {first: wide[first], second: wide[second], "difference": wide[first] - wide[second]}
    )


def learning_curve(
    appraisals: pd.DataFrame,
    sizes: tuple[int, ...] = (250, 500, 1000, 2000, 3000),
    n_splits: int = 5,
    seed: int = 0,
) -> pd.DataFrame:
    """Held-out MAPE and MAE of the shipped model trained on growing subsets of the data."""
    frame = _complete(appraisals)
    stones = frame[list(STONE_COLUMNS)]
    prices = frame["price"].to_numpy(dtype=float)
    rng = np.random.default_rng(seed)
    splits = list(KFold(n_splits, shuffle=True, random_state=seed).split(stones))
    # The requested sizes that fit, then a whole training fold (the smallest fold's size, so
    # that every fold contributes to the same last point).
    full = min(len(train_idx) for train_idx, _ in splits)
    rows = []
    for fold, (train_idx, test_idx) in enumerate(splits):
        order = rng.permutation(train_idx)
        for size in [s for s in sizes if s < full] + [full]:
            subset = order[:size]
            model = PriceModel().fit(stones.iloc[subset], prices[subset])
            metrics = price_metrics(prices[test_idx], model.predict(stones.iloc[test_idx]))
            rows.append(
                {"train_size": size, "fold": fold, "mape": metrics["mape"], "mae": metrics["mae"]}
            )
    return pd.DataFrame(rows)


# ---- ranges -----------------------------------------------------------------------------------


def coverage_by_group(results: pd.DataFrame, column: str) -> pd.DataFrame:
    """Share of real prices inside the range, and the median relative width, per group.

    `results` has one row per priced stone: `inside` (bool), `width` ((high - low) / estimate)
    and the grouping column."""
    grouped = results.groupby(column, observed=True)
    return pd.DataFrame(
        {
            "coverage": 100 * grouped["inside"].mean(),
            "median_width": 100 * grouped["width"].median(),
            "n": grouped.size(),
        }
    ).reset_index()


def band(values: pd.Series, edges: tuple[float, ...], unit: str) -> pd.Series:
    """Values cut into the bands `words.band_labels` names."""
    return pd.cut(values, list(edges), labels=band_labels(edges, unit))


def _side_scale(features: np.ndarray, target: np.ndarray) -> lgb.Booster:
    params = {
        "objective": "regression",
        "learning_rate": 0.05,
        "num_leaves": 7,
        "min_data_in_leaf": 50,
        "verbose": -1,
        "num_threads": 1,
        "seed": 0,
    }
    return lgb.train(params, lgb.Dataset(features, label=target), num_boost_round=150)


def _normalised(
    features: np.ndarray, residuals: np.ndarray, folds: Folds, test: np.ndarray, level: float
) -> tuple[np.ndarray, np.ndarray]:
    """One symmetric scale of |residual| (normalised conformal), for comparison."""
    scale = np.empty(len(residuals))
    for train, held in folds:
        scale[held] = _side_scale(features[train], np.abs(residuals[train])).predict(features[held])
    floor = 0.25 * float(np.median(np.abs(residuals)))
    q_low, q_high = conformal_quantiles(np.sort(residuals / np.maximum(scale, floor)), level)
    fitted = np.maximum(_side_scale(features, np.abs(residuals)).predict(test), floor)
    return q_low * fitted, q_high * fitted


def _quantile_regression(
    features: np.ndarray, residuals: np.ndarray, folds: Folds, test: np.ndarray, level: float
) -> tuple[np.ndarray, np.ndarray]:
    """Conformalised quantile regression (CQR) of the residuals, for comparison."""
    tail = (1 - level) / 2

    def fit(x: np.ndarray, y: np.ndarray, alpha: float) -> lgb.Booster:
        params = {
            "objective": "quantile",
            "alpha": alpha,
            "learning_rate": 0.05,
            "num_leaves": 7,
            "min_data_in_leaf": 50,
            "verbose": -1,
            "num_threads": 1,
            "seed": 0,
        }
        return lgb.train(params, lgb.Dataset(x, label=y), num_boost_round=150)

    low, high = np.empty(len(residuals)), np.empty(len(residuals))
    for train, held in folds:
        low[held] = fit(features[train], residuals[train], tail).predict(features[held])
        high[held] = fit(features[train], residuals[train], 1 - tail).predict(features[held])
    errors = np.sort(np.maximum(low - residuals, residuals - high))
    q = errors[min(len(errors), math.ceil((len(errors) + 1) * level)) - 1]
    return (
        fit(features, residuals, tail).predict(test) - q,
        fit(features, residuals, 1 - tail).predict(test) + q,
    )


def compare_intervals(
    appraisals: pd.DataFrame,
    level: float = 0.9,
    n_splits: int = 5,
    n_repeats: int = 2,
    seed: int = 0,
) -> pd.DataFrame:
    """Every range method on every stone of repeated K-fold CV; one row per (method, stone).

    Methods: `global` (one pair of conformal offsets, the first release), `normalised` (one
    symmetric scale), `quantile` (CQR) and `local` (the shipped per-side scales), and
    `local + confidence` (what quotes do: low confidence widens). Columns: method, fold,
    inside, width, carat, cut, price, estimate, confidence."""
    frame = _complete(appraisals)
    prices = frame["price"].to_numpy(dtype=float)
    rows = []
    splitter = RepeatedKFold(n_splits=n_splits, n_repeats=n_repeats, random_state=seed)
    for fold, (train_idx, test_idx) in enumerate(splitter.split(frame)):
        train, test = frame.iloc[train_idx].reset_index(drop=True), frame.iloc[test_idx]
        folds = list(KFold(5, shuffle=True, random_state=seed).split(train))
        residuals = out_of_fold(PriceModel(random_state=seed), train, prices[train_idx], folds)
        estimate = PriceModel(random_state=seed).fit(train, prices[train_idx]).predict_log(test)
        features, test_features = encode(train, SPREAD_FEATURES), encode(test, SPREAD_FEATURES)
        q_low, q_high = conformal_quantiles(np.sort(residuals), level)
        spread = fit_spread(features, residuals, folds)
        domain = Domain.of(train)
        judged = judge(
            domain,
            test["carat"].to_numpy(),
            test["color"].cat.codes.to_numpy(),
            test["clarity"].cat.codes.to_numpy(),
            np.zeros(len(test), dtype=bool),
        )
        widen = judged.widen
        offsets = {
            "global": (np.full(len(test), q_low), np.full(len(test), q_high)),
            "normalised": _normalised(features, residuals, folds, test_features, level),
            "quantile": _quantile_regression(features, residuals, folds, test_features, level),
            "local": spread.offsets(test_features, level),
            "local + confidence": spread.offsets(test_features, level, widen),
        }
        for method, (low, high) in offsets.items():
            inside = (np.log(prices[test_idx]) >= estimate + low) & (
                np.log(prices[test_idx]) <= estimate + high
            )
            rows.append(
                pd.DataFrame(
                    {
                        "method": method,
                        "fold": fold,
                        "inside": inside,
                        "width": np.exp(high) - np.exp(low),
                        "carat": test["carat"].to_numpy(),
                        "cut": test["cut"].astype(str).to_numpy(),
                        "price": prices[test_idx],
                        "estimate": np.exp(estimate),
                        "confidence": [str(LEVELS[k]) for k in judged.level],
                    }
                )
            )
    results = pd.concat(rows, ignore_index=True)
    results["carat band"] = band(results["carat"], CARAT_GROUPS, "ct")
    results["price band"] = band(results["price"], PRICE_GROUPS, "$")
    return results


def interval_summary(results: pd.DataFrame) -> pd.DataFrame:
    """Per method: overall coverage, the worst group's coverage (carat band, cut, price band),
    and the median relative width — the table the targets are read from."""
    rows = []
    for method, group in results.groupby("method", sort=False):
        worst = {
            column: coverage_by_group(group, column)["coverage"].min()
            for column in ("carat band", "cut", "price band")
        }
        rows.append(
            {
                "method": method,
                "coverage": 100 * group["inside"].mean(),
                **{f"worst {column}": value for column, value in worst.items()},
                "median width": 100 * group["width"].median(),
            }
        )
    return pd.DataFrame(rows)
