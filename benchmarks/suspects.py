"""How the suspect-price check behaves on the bundled data: the threshold it derives, false
suspects on genuine batches, and what it says of a market move, a shuffled file and typing slips.

Not a speed benchmark: the figures quoted in README ("Suspect prices") and in the issue notes.
`python -m benchmarks.suspects` (about 10 s).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from diamond_model.data.validation import validate_csv
from diamond_model.learning.loop import BUNDLED_DATASET
from diamond_model.learning.preview import LiveScore, live_score
from diamond_model.learning.training import fit_pricing_model
from diamond_model.pricing.model import PricingModel


def _score(model: PricingModel, rows: pd.DataFrame, name: str) -> LiveScore:
    score = live_score(model, 1, rows, np.arange(len(rows)) + 2, 0.9)
    causes = pd.Series([s["cause"].split(":")[0] or "none" for s in score.suspects])
    print(
        f"{name:34} {len(score.suspects):>4} of {score.n:>4} suspects "
        f"({100 * len(score.suspects) / score.n:5.1f} %), verdict {score.verdict!r}, "
        f"level {score.level_pct:+.1f} %, causes {causes.value_counts().to_dict()}"
    )
    return score


def _slipped(rows: pd.DataFrame, count: int, factor: float, seed: int) -> tuple[pd.DataFrame, set]:
    rows = rows.reset_index(drop=True).copy()
    picked = np.random.default_rng(seed).choice(len(rows), count, replace=False)
    rows.loc[picked, "price"] = (rows.loc[picked, "price"] * factor).round(0)
    return rows, {int(k) + 2 for k in picked}


def main() -> None:
    _, result = validate_csv(BUNDLED_DATASET.read_bytes(), "appraisal")
    appraisals = result.accepted.drop(columns="line").reset_index(drop=True)
    model = fit_pricing_model(appraisals.iloc[:4000])[0]
    print(
        f"trained on 4,000 bundled appraisals: typical miss {model.typical_miss:.4f}, suspect "
        f"threshold {model.suspect_miss:.3f} in log price (×{np.exp(model.suspect_miss):.2f}), "
        f"{model.suspect_miss / model.typical_miss:.2f} typical misses"
    )
    fresh = appraisals.iloc[4000:].reset_index(drop=True)
    _score(model, fresh, "unseen genuine appraisals")
    moved = fresh.assign(price=(fresh["price"] * 1.15).round(0))
    _score(model, moved, "the same at +15 % (a market move)")
    for seed in range(3):
        rows = fresh.iloc[:300].copy()
        rows["price"] = np.random.default_rng(seed).permutation(rows["price"].to_numpy())
        _score(model, rows, f"300 with prices shuffled (seed {seed})")
    for factor, count, name in ((10.0, 40, "×10"), (0.1, 10, "÷10")):
        rows, slipped = _slipped(fresh.iloc[:300], count, factor, 3)
        score = _score(model, rows, f"300 with {count} prices {name}")
        print(f"{'':34} {len(slipped & set(score.suspect_lines))} of the {count} slips caught")
    seen = sum(
        len(live_score(model, 1, part, np.arange(len(part)), 0.9).suspects)
        for part in (appraisals.iloc[k : k + 400] for k in range(0, 4000, 400))
    )
    print(f"appraisals the model trained on: {seen} of 4,000 called suspects")


if __name__ == "__main__":
    main()
