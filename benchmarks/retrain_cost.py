"""How a retrain's time and peak memory grow with the store (issue 22, point 5).

    python -m benchmarks.retrain_cost 5000 25000 100000 [400000 1000000]

Each size is a store resampled from the bundled appraisals with noise (rows drawn with
replacement; carat and the millimetres scaled together by up to ±3 %, the price by the carat's
power law times a 5 % log-normal appraiser's noise, so no two stones are the same), retrained by
`training.train` exactly as the loop does (size search within its budget, the exam and the served
fit), each in a fresh process so its peak resident memory is its own. Sizes are run smallest
first and the run stops after the first retrain longer than `--stop-after` seconds (600 by
default: the 10-minute line), since each larger one takes longer still.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np
import pandas as pd

from diamond_model.learning.training import SEARCH_BUDGET_SECONDS, train

SEED = 0
CARAT_EXPONENT = 1.7  # log price against log carat on the bundled appraisals, roughly


def resampled(n: int, seed: int = SEED) -> pd.DataFrame:
    """`n` appraisals like the bundled ones, each a little different (see the module's text)."""
    import tempfile
    from pathlib import Path

    from diamond_model.data.schema import BUNDLED_APPRAISED_ON
    from diamond_model.learning.loop import BUNDLED_DATASET, LearningLoop
    from diamond_model.settings import Settings

    with tempfile.TemporaryDirectory() as folder:
        loop = LearningLoop.from_settings(Settings(instance_dir=Path(folder), auto_retrain=False))
        loop.store.create_schema()
        data = BUNDLED_DATASET.read_bytes()
        loop.submit(loop.preview(data, "bundled.csv", BUNDLED_APPRAISED_ON), "bench", False)
        stored = loop.store.appraisals().drop(columns=["stone_key"], errors="ignore")
        loop.store.dispose()
    rng = np.random.default_rng(seed)
    rows = stored.iloc[rng.integers(0, len(stored), n)].reset_index(drop=True)
    scale = np.exp(rng.uniform(np.log(0.97), np.log(1.03), n))
    rows["carat"] = (rows["carat"] * scale).round(3)
    for name in ("x", "y", "z"):
        rows[name] = (rows[name] * scale ** (1 / 3)).round(2)
    noise = np.exp(rng.normal(0.0, 0.05, n))
    rows["price"] = (rows["price"] * scale**CARAT_EXPONENT * noise).round(0).clip(lower=1)
    return rows


def one(n: int) -> dict[str, object]:
    """Retrain a resampled store of `n` appraisals in this process: seconds, peak MB, sizes."""
    frame = resampled(n)
    started = time.perf_counter()
    result = train(frame, 0.9, 0.2, budget=SEARCH_BUDGET_SECONDS)
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "appraisals": n,
        "seconds": round(seconds, 1),
        "peak_mb": round(peak_mb),
        "served": result.model.capacity,
        "tried": [f"{t.capacity} {t.mape:.2f} % in {t.seconds:.0f} s" for t in result.trials],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sizes", nargs="*", type=int, default=[5_000, 25_000, 100_000])
    parser.add_argument("--stop-after", type=float, default=600.0)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # the child process
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one)))
        return
    print(f"{'appraisals':>11}  {'retrain':>9}  {'peak memory':>11}  served  sizes tried")
    for n in sorted(args.sizes):
        child = subprocess.run(
            [sys.executable, "-m", "benchmarks.retrain_cost", "--one", str(n)],
            capture_output=True,
            text=True,
            check=True,
        )
        row = json.loads(child.stdout.strip().splitlines()[-1])
        print(
            f"{row['appraisals']:>11,}  {row['seconds']:>7.0f} s  {row['peak_mb']:>8,} MB  "
            f"{row['served']:6}  {'; '.join(row['tried'])}",
            flush=True,
        )
        if float(row["seconds"]) > args.stop_after:
            print(f"stopped: that retrain took more than {args.stop_after:.0f} s")
            break


if __name__ == "__main__":
    main()
