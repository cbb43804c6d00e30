"""Accuracy figures in the units a jeweller uses: percent and dollars."""

from __future__ import annotations

import numpy as np

THRESHOLDS = (0.05, 0.10, 0.20)


def price_metrics(actual: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """MAPE (%), median APE (%), MAE, RMSE ($), R² on price, and shares within 5/10/20 %."""
    actual = np.asarray(actual, dtype=float)
    predicted = np.asarray(predicted, dtype=float)
    error = predicted - actual
    ape = np.abs(error) / actual
    total = np.sum((actual - actual.mean()) ** 2)
    metrics = {
        "mape": float(100 * ape.mean()),
        "median_ape": float(100 * np.median(ape)),
        "mae": float(np.abs(error).mean()),
        "rmse": float(np.sqrt(np.mean(error**2))),
        "r2": float(1 - np.sum(error**2) / total) if total > 0 else float("nan"),
        "n": int(len(actual)),
    }
    for threshold in THRESHOLDS:
        metrics[f"within_{int(threshold * 100)}pct"] = float(100 * np.mean(ape <= threshold))
    return metrics


def coverage(actual: np.ndarray, low: np.ndarray, high: np.ndarray) -> float:
    """Percent of actual prices inside [low, high]."""
    actual = np.asarray(actual, dtype=float)
    return float(100 * np.mean((actual >= low) & (actual <= high)))


def plain_words(metrics: dict[str, float | None]) -> list[str]:
    """The held-out accuracy as a property site reports its estimates."""

    def get(key: str) -> float:
        value = metrics.get(key)
        return float("nan") if value is None else float(value)

    level = get("level") or 90.0
    in_ten = round(get("coverage") / 10)
    return [
        f"Half of the stones it had never seen were priced within {get('median_ape'):.1f}% "
        "of the expert's price.",
        f"{get('within_5pct'):.0f}% were within 5%, {get('within_10pct'):.0f}% within 10% and "
        f"{get('within_20pct'):.0f}% within 20%.",
        f"On average it is off by {get('mape'):.1f}% (${get('mae'):,.0f}).",
        f"{in_ten} in 10 real prices fell inside the quoted {level:.0f}% range "
        f"(measured {get('coverage'):.1f}% on {int(get('n')):,} held-out appraisals).",
    ]
