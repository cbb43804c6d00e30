"""Training: a function from appraisals to a typed result (fitted model, metrics, fingerprint).

The deployable `PricingModel` holds two `PriceModel`s: the full one, used when every measurement is
given, and a 4Cs-only one for stones with missing depth, table or x/y/z. Each has its own
out-of-fold conformal residuals, so a stone priced from fewer inputs honestly gets a wider range.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.model_selection import KFold

from diamond_model.intervals import IntervalCalibration, calibrate
from diamond_model.metrics import coverage, price_metrics
from diamond_model.model import FULL_FEATURES, PriceModel
from diamond_model.schema import APPRAISAL_COLUMNS, FOUR_C, GRADES, MEASUREMENTS

CALIBRATION_FOLDS = 5
MIN_TRAINING_ROWS = 50


class NotEnoughDataError(ValueError):
    """Too few appraisals to train and evaluate a model."""


NUMERIC_DOMAIN = ("carat", *MEASUREMENTS)


@dataclass(frozen=True)
class Domain:
    """What the model has seen: numeric ranges and how many stones of each grade."""

    ranges: dict[str, tuple[float, float]]
    grade_counts: dict[str, dict[str, int]]

    @classmethod
    def of(cls, frame: pd.DataFrame) -> Domain:
        ranges = {c: (float(frame[c].min()), float(frame[c].max())) for c in NUMERIC_DOMAIN}
        counts = {
            g: {
                k: int(v)
                for k, v in frame[g].value_counts().reindex(GRADES[g], fill_value=0).items()
            }
            for g in GRADES
        }
        return cls(ranges=ranges, grade_counts=counts)


@dataclass
class PricingModel:
    """Everything needed to quote: both regressors, their calibration residuals, the seen domain."""

    full: PriceModel
    reduced: PriceModel
    residuals: dict[str, np.ndarray]
    domain: Domain
    n_train: int

    def calibration(self, variant: str, level: float) -> IntervalCalibration:
        return calibrate(self.residuals[variant], level)

    def regressor(self, variant: str) -> PriceModel:
        return self.full if variant == "full" else self.reduced


@dataclass(frozen=True)
class TrainingResult:
    """A fitted candidate with its evaluation on held-out appraisals it never saw."""

    model: PricingModel
    algorithm: str
    params: dict[str, object]
    metrics: dict[str, float]
    n_train: int
    n_holdout: int
    fingerprint: str
    seconds: float
    calibration: dict[str, object] = field(default_factory=dict)


def fingerprint(frame: pd.DataFrame) -> str:
    """SHA-256 of the appraisal rows, independent of their order."""
    canonical = canonical_rows(frame)
    hashes = np.sort(pd.util.hash_pandas_object(canonical, index=False).to_numpy())
    return hashlib.sha256(hashes.tobytes()).hexdigest()


def canonical_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The ten appraisal columns as plain strings/rounded floats, for stable hashing."""
    out = pd.DataFrame(index=frame.index)
    for column in APPRAISAL_COLUMNS:
        values = frame[column]
        out[column] = values.astype(str) if column in GRADES else values.astype(float).round(4)
    return out


def holdout_mask(frame: pd.DataFrame, fraction: float) -> np.ndarray:
    """Stable held-out set: a row is held out by the hash of its content, whatever the batch.

    The same appraisal is held out by every retrain, so a champion and a candidate are always
    compared on stones neither was trained on.
    """
    hashes = pd.util.hash_pandas_object(canonical_rows(frame), index=False).to_numpy()
    return (hashes % np.uint64(10_000)) < int(round(fraction * 10_000))


def out_of_fold_residuals(
    regressor: PriceModel, stones: pd.DataFrame, prices: np.ndarray, seed: int = 0
) -> np.ndarray:
    """log(actual) - log(predicted) for every row, each predicted by a model that did not see it."""
    residuals = np.empty(len(stones))
    folds = KFold(CALIBRATION_FOLDS, shuffle=True, random_state=seed)
    for train_idx, test_idx in folds.split(stones):
        fold_model = clone(regressor).fit(stones.iloc[train_idx], prices[train_idx])
        residuals[test_idx] = np.log(prices[test_idx]) - fold_model.predict_log(
            stones.iloc[test_idx]
        )
    return residuals


def fit_pricing_model(appraisals: pd.DataFrame, seed: int = 0) -> PricingModel:
    """Calibrate (out-of-fold) and fit both regressors on all of `appraisals`."""
    prices = appraisals["price"].to_numpy(dtype=float)
    regressors = {
        "full": PriceModel(features=FULL_FEATURES, random_state=seed),
        "reduced": PriceModel(features=FOUR_C, random_state=seed),
    }
    residuals = {  # kept sorted: calibrating for any level is then a lookup
        name: np.sort(out_of_fold_residuals(regressor, appraisals, prices, seed))
        for name, regressor in regressors.items()
    }
    fitted = {name: regressor.fit(appraisals, prices) for name, regressor in regressors.items()}
    return PricingModel(
        full=fitted["full"],
        reduced=fitted["reduced"],
        residuals=residuals,
        domain=Domain.of(appraisals),
        n_train=len(appraisals),
    )


def evaluate(model: PricingModel, appraisals: pd.DataFrame, level: float) -> dict[str, float]:
    """Accuracy and interval coverage on `appraisals`, which the model must not have seen."""
    prices = appraisals["price"].to_numpy(dtype=float)
    predicted = model.full.predict(appraisals)
    metrics = price_metrics(prices, predicted)
    low, high = model.calibration("full", level).bounds(predicted)
    metrics["coverage"] = coverage(prices, low, high)
    reduced = model.reduced.predict(appraisals)
    metrics["mape_4c_only"] = price_metrics(prices, reduced)["mape"]
    low4, high4 = model.calibration("reduced", level).bounds(reduced)
    metrics["coverage_4c_only"] = coverage(prices, low4, high4)
    metrics["level"] = 100 * level
    return metrics


def train(
    appraisals: pd.DataFrame, level: float, holdout_fraction: float, seed: int = 0
) -> TrainingResult:
    """Train a candidate on the non-held-out appraisals and evaluate it on the held-out ones."""
    started = time.perf_counter()
    if len(appraisals) < MIN_TRAINING_ROWS:
        raise NotEnoughDataError(
            f"Training needs at least {MIN_TRAINING_ROWS} appraisals; the store has "
            f"{len(appraisals)}. "
            "Ingest more appraisals first."
        )
    held_out = holdout_mask(appraisals, holdout_fraction)
    train_rows, test_rows = appraisals.loc[~held_out], appraisals.loc[held_out]
    model = fit_pricing_model(train_rows, seed=seed)
    metrics = evaluate(model, test_rows, level)
    calibration = {
        variant: asdict(model.calibration(variant, level)) for variant in ("full", "reduced")
    }
    return TrainingResult(
        model=model,
        algorithm="LightGBM monotone on log(price) + log-carat power law; 4C-only fallback",
        params={k: v for k, v in model.full.get_params().items() if k != "features"},
        metrics=metrics,
        n_train=len(train_rows),
        n_holdout=len(test_rows),
        fingerprint=fingerprint(appraisals),
        seconds=time.perf_counter() - started,
        calibration=calibration,
    )
