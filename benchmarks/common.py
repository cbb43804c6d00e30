"""Helpers shared by the benchmark scripts: timing with medians, ratios against targets,
realistic data, seeded instances."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from diamond_model.data.validation import validate_csv
from diamond_model.learning.loop import BUNDLED_DATASET, LearningLoop
from diamond_model.settings import Settings


def bundled_appraisals() -> pd.DataFrame:
    _, result = validate_csv(BUNDLED_DATASET.read_bytes(), "appraisal")
    frame = result.accepted.drop(columns=["line", "appraised_on"])
    return frame.drop_duplicates().reset_index(drop=True)


def seeded_instance(folder: str) -> LearningLoop:
    """An instance folder whose SQLite database holds the bundled data and a trained champion."""
    pipeline = LearningLoop.from_settings(Settings(instance_dir=Path(folder), auto_retrain=False))
    pipeline.initialise()
    return pipeline


def many_appraisals(n: int, seed: int = 0) -> pd.DataFrame:
    """`n` distinct appraisals: bundled stones resampled, carat and price nudged to be unique."""
    base = bundled_appraisals()
    rng = np.random.default_rng(seed)
    rows = base.iloc[rng.integers(0, len(base), n)].reset_index(drop=True)
    rows["carat"] = (rows["carat"] + rng.integers(0, 9, n) * 0.001).round(3)
    rows["price"] = (rows["price"] * rng.uniform(0.97, 1.03, n)).round(0)
    return rows


def timings(action: Callable[[], object], repeat: int, warmup: int = 3) -> list[float]:
    """Wall-clock seconds of `repeat` calls after `warmup` untimed calls."""
    for _ in range(warmup):
        action()
    out = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        out.append(time.perf_counter() - started)
    return out


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def report(name: str, seconds: list[float], target: float | None = None, unit: str = "ms") -> float:
    """Print p50 and p99 (and the p50 against an absolute target); returns the p50 in seconds."""
    scale = 1000.0 if unit == "ms" else 1.0
    p50 = statistics.median(seconds) * scale
    p99 = percentile(seconds, 99) * scale
    verdict = ""
    if target is not None:
        verdict = f"  target ≤ {target:g} {unit}: {'OK' if p50 <= target else 'MISSED'}"
    print(f"{name:58} p50 {p50:9.2f} {unit}  p99 {p99:9.2f} {unit}  n={len(seconds)}{verdict}")
    return statistics.median(seconds)


def ratio(name: str, value: float, baseline: float, target: float) -> None:
    """A ratio measured in this run, beside its target."""
    measured = value / baseline
    print(
        f"{'RATIO ' + name:58} {measured:5.2f}x   target ≤ {target:g}x: "
        f"{'OK' if measured <= target else 'MISSED'}"
    )
