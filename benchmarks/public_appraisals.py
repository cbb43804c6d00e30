"""Accuracy on the public appraisals outside the bundled file: measurement only, never tuning.

The bundled 5,000 appraisals are a sample of the public ggplot2 `diamonds` table (53,940 rows).
The rows of that table not in the bundled file (48,902 with usable millimetres) are split once,
with a fixed seed: 15,000 are the test set; the rest are "more appraisals" a store could grow by.

    python -m benchmarks.public_appraisals served PUBLIC_CSV   # the served model's figures
    python -m benchmarks.public_appraisals sizes PUBLIC_CSV [EXTRA ...]  # the size study

PUBLIC_CSV is the table as ggplot2 ships it (plotnine's wheel has a copy:
`plotnine/data/diamonds.csv`); it is not bundled here and nothing downloads it.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.model_selection import KFold, RepeatedKFold

from diamond_model.data.schema import BUNDLED_APPRAISED_ON, GRADES, STONE_COLUMNS
from diamond_model.data.validation import validate_csv
from diamond_model.learning.evaluation import (
    CARAT_GROUPS,
    PRICE_GROUPS,
    _complete,
    band,
    coverage_by_group,
)
from diamond_model.learning.loop import BUNDLED_DATASET, LearningLoop
from diamond_model.learning.metrics import price_metrics
from diamond_model.learning.training import train
from diamond_model.pricing.model import Capacity, PriceModel
from diamond_model.pricing.quote import quote_frame
from diamond_model.settings import Settings

COLUMNS = ["carat", "cut", "color", "clarity", "depth", "table", "price", "x", "y", "z"]
ROUNDING = {"carat": 2, "depth": 1, "table": 1, "price": 0, "x": 2, "y": 2, "z": 2}
TEST_ROWS = 15_000
SEED = 0


def _keys(frame: pd.DataFrame) -> pd.Series:
    rounded = frame[COLUMNS].copy()
    for column, digits in ROUNDING.items():
        rounded[column] = rounded[column].astype(float).round(digits)
    return rounded.astype(str).agg("|".join, axis=1)


def split(public_csv: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(bundled appraisals, the public test set, the other public appraisals in a fixed order)."""
    bundled = pd.read_csv(BUNDLED_DATASET)
    public = pd.read_csv(public_csv)
    others = public[~_keys(public).isin(set(_keys(bundled)))]
    others = others[(others[["x", "y", "z"]] > 0).all(axis=1)].reset_index(drop=True)
    order = np.random.default_rng(SEED).permutation(len(others))
    test = others.iloc[order[:TEST_ROWS]].reset_index(drop=True)
    more = others.iloc[order[TEST_ROWS:]].reset_index(drop=True)
    return bundled, test, more


def _worst_groups(test: pd.DataFrame, inside: np.ndarray, width: np.ndarray) -> str:
    """The least-covered group of each kind a jeweller reads ranges by (each should be ≥ 88 %)."""
    results = test.assign(
        inside=inside,
        width=width,
        carat_band=band(test["carat"], CARAT_GROUPS, "ct"),
        price_band=band(test["price"], PRICE_GROUPS, "$"),
    )
    said = []
    for column in ("carat_band", "cut", "color", "clarity", "price_band"):
        groups = coverage_by_group(results, column)
        low = groups.loc[groups["coverage"].idxmin()]
        said.append(f"{column} {low[column]} {low['coverage']:.1f} % (n {low['n']:,})")
    return "; ".join(said)


def served(public_csv: Path) -> None:
    """The served pipeline as a store runs it (the files stored through validation, then
    `training.train`: size search, both regressors, ranges, market index), on the bundled
    appraisals and then with 20,000 more (dated as the bundled ones: one market month): the
    served model (every appraisal) and its exam (without the held-out fifth)."""
    bundled, test, more = split(public_csv)
    print(f"public others: {TEST_ROWS:,} test, {len(more):,} more; bundled {len(bundled):,}")
    stones = test[list(STONE_COLUMNS)]
    actual = test["price"].to_numpy(dtype=float)
    with tempfile.TemporaryDirectory() as folder:
        loop = LearningLoop.from_settings(Settings(instance_dir=Path(folder), auto_retrain=False))
        loop.store.create_schema()
        for extra, rows in ((0, bundled), (20_000, more.iloc[:20_000])):
            dated = rows.assign(appraised_on=BUNDLED_APPRAISED_ON.isoformat())
            loop.ingest(dated.to_csv(index=False).encode(), f"{extra}.csv", "study", retrain=False)
            appraisals = loop.store.appraisals()
            started = time.perf_counter()
            result = train(appraisals, 0.9, 0.2)
            seconds = time.perf_counter() - started
            for name, model, rows_seen in (
                ("served", result.model, result.n_train),
                ("exam", result.exam, result.n_train - result.n_holdout),
            ):
                quotes = quote_frame(model, stones, 0.9, explain_prices=False).quotes
                price = np.array([q.price for q in quotes])
                low, high = np.array([q.low for q in quotes]), np.array([q.high for q in quotes])
                metrics = price_metrics(actual, price)
                inside = (actual >= low) & (actual <= high)
                width = (high - low) / price
                rich = actual > 10_000
                worst = _worst_groups(test, inside, width)
                print(
                    f"{name:6} trained on {rows_seen:,} of {len(appraisals):,} ({model.capacity},"
                    f" retrain {seconds:.0f} s): MAPE {metrics['mape']:.2f} %, "
                    f"MAE ${metrics['mae']:,.0f}, coverage {100 * inside.mean():.1f} % "
                    f"(above $10,000: {100 * inside[rich].mean():.1f} %), "
                    f"median width {100 * np.median(width):.1f} %"
                )
                print(f"       least covered: {worst}")
        loop.store.dispose()


SIZES = (  # the candidates of the 2026-12 studies; the chosen ones are in model.CAPACITIES
    Capacity("previous small: 250 trees at 0.12, 15 leaves of 15", 15, 250, 0.12, 15, 0),
    Capacity("small: 1,000 at 0.03, 23 leaves of 7", 23, 1000, 0.03, 7, 0),
    Capacity("1,000 at 0.03, 15 leaves of 10", 15, 1000, 0.03, 10, 0),
    Capacity("1,500 at 0.02, 23 leaves of 7", 23, 1500, 0.02, 7, 0),
    Capacity("small with volume and outline", 23, 1000, 0.03, 7, 0, shape=True),
    Capacity("previous medium: 800 at 0.075, 31 leaves of 10", 31, 800, 0.075, 10, 0),
    Capacity("first medium: 2,000 at 0.03, 47 leaves of 5", 47, 2000, 0.03, 5, 0),
    Capacity("the same, volume and outline", 47, 2000, 0.03, 5, 0, shape=True),
    Capacity("the same, Huber δ 0.05", 47, 2000, 0.03, 5, 0, 0.05, shape=True),
    Capacity("medium: 2,000 at 0.03, 63 of 5, δ 0.05, shape", 63, 2000, 0.03, 5, 0, 0.05, True),
    Capacity("large: the same, 95 leaves", 95, 2000, 0.03, 5, 0, 0.05, True),
    Capacity("the same, 63 leaves, 3,000 trees", 63, 3000, 0.03, 5, 0, 0.05, True),
    Capacity("the same, 95 leaves, 3,000 trees", 95, 3000, 0.03, 5, 0, 0.05, True),
)
SMALL_STORE_ONLY = 5  # the first five are the small sizes' candidates


def sizes(public_csv: Path, extras: tuple[int, ...] = (0, 20_000)) -> None:
    """Each size by cross-validation on what a store would hold (repeated 5 × 3 on the bundled
    appraisals, the small sizes only; 5-fold with 20,000 more), then checked on the test set."""
    _, test, more = split(public_csv)
    bundled_csv = BUNDLED_DATASET.read_bytes()  # kept as the store keeps it: validated
    for extra in extras:
        files = [bundled_csv] + ([more.iloc[:extra].to_csv(index=False).encode()] if extra else [])
        valid = [validate_csv(data, "appraisal")[1].accepted for data in files]
        store = _complete(pd.concat(valid, ignore_index=True).astype({g: str for g in GRADES}))
        stones, prices = store[list(STONE_COLUMNS)], store["price"].to_numpy(dtype=float)
        splitter = (
            RepeatedKFold(n_splits=5, n_repeats=3, random_state=SEED)
            if not extra
            else KFold(5, shuffle=True, random_state=SEED)
        )
        folds = list(splitter.split(stones))
        print(f"== a store of {len(store):,} appraisals ==", flush=True)
        for capacity in SIZES[:SMALL_STORE_ONLY] if not extra else SIZES:
            recipe = PriceModel().with_capacity(capacity)
            cv = [
                price_metrics(
                    prices[te],
                    clone(recipe).fit(stones.iloc[tr], prices[tr]).predict(stones.iloc[te]),
                )["mape"]
                for tr, te in folds
            ]
            fitted = clone(recipe).fit(stones, prices)
            check = price_metrics(
                test["price"].to_numpy(float), fitted.predict(test[list(STONE_COLUMNS)])
            )
            print(
                f"  {capacity.name:48} CV {np.mean(cv):.3f} ± {np.std(cv, ddof=1):.3f} %   "
                f"test {check['mape']:.3f} %, ${check['mae']:,.0f}",
                flush=True,
            )


if __name__ == "__main__":
    if len(sys.argv) < 3 or sys.argv[1] not in ("served", "sizes"):
        sys.exit(__doc__)
    if sys.argv[1] == "served":
        served(Path(sys.argv[2]))
    else:  # optional: the store sizes to study, as extra appraisals (0 = the bundled ones)
        sizes(Path(sys.argv[2]), tuple(int(n) for n in sys.argv[3:]) or (0, 20_000))
