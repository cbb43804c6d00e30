"""The gate: whether a candidate model may replace the champion.

A candidate replaces the champion only if
1. no active batch added since the champion was trained is inconsistent (`preview.LiveScore`:
   prices that do not follow the stones, or an implausible level) — such a batch must be
   withdrawn first; and
2. its MAPE and MAE, each stone priced at its own month's market level by each model's own
   index, are not worse than the champion's beyond the tolerance (and beyond twice the standard
   error of the stone-by-stone difference, the noise of a small held-out set), both on all
   held-out appraisals and on the held-out appraisals the champion already knew — so a batch
   cannot buy a promotion by also poisoning the exam, while a market move wins on the new months.
A row is held out by its stone key, so no exam of the chain was ever fitted on it: the gate
compares the two versions' exams (their recipes fitted without the held-out rows); the served
models, fitted on every appraisal, are never graded here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from diamond_model.learning.preview import LiveScore

# A gap must also exceed twice the standard error of the paired difference: on a few hundred
# held-out stones, 2 % of MAE is within the noise, and refusing on it froze the model on
# its first data (a candidate trained on 2,600 appraisals refused for $303 vs $296 MAE on 413).
NOISE_FACTOR = 2.0


@dataclass(frozen=True)
class Comparison:
    """Candidate and champion on one evaluation set, with the standard error of the paired
    difference of each metric (how much of a gap the set's size alone could produce)."""

    name: str
    n: int
    candidate: dict[str, float]
    champion: dict[str, float]
    noise: dict[str, float] = field(default_factory=dict)


def paired_noise(
    prices: np.ndarray, candidate: np.ndarray, champion: np.ndarray
) -> dict[str, float]:
    """Standard error of the mean difference in % error and in $ error, stone by stone."""
    n = max(len(prices), 2)
    percent = 100 * (np.abs(candidate - prices) - np.abs(champion - prices)) / prices
    dollars = np.abs(candidate - prices) - np.abs(champion - prices)
    return {
        "mape": float(np.std(percent, ddof=1) / np.sqrt(n)),
        "mae": float(np.std(dollars, ddof=1) / np.sqrt(n)),
    }


def gate(
    comparisons: list[Comparison], tolerance: float, unsound: list[tuple[int, LiveScore]]
) -> tuple[bool, str]:
    """Promote only if no new batch is unsound and the candidate is not worse anywhere."""
    if unsound:
        listed = "; ".join(
            f"batch {batch_id} ({score.verdict}: spread {score.spread_ratio:.1f}× the model's "
            f"usual errors, level {score.level_pct:+.1f} %)"
            for batch_id, score in unsound
        )
        ids = " ".join(str(batch_id) for batch_id, _ in unsound)
        return False, (
            f"not promoted: trained on batches whose prices do not follow their stones — {listed}. "
            f"Withdraw them (withdraw batch {ids}) and retrain."
        )
    failures, summary = [], []
    words = {"mape": "average error", "mae": "average error in dollars"}
    for comparison in comparisons:
        for metric, unit in (("mape", "%"), ("mae", "$")):
            cand, champ = comparison.candidate[metric], comparison.champion[metric]
            shown = (
                f"{cand:.2f}{unit} vs {champ:.2f}{unit}"
                if unit == "%"
                else f"${cand:,.0f} vs ${champ:,.0f}"
            )
            noise = NOISE_FACTOR * comparison.noise.get(metric, 0.0)
            if not math.isfinite(cand) or (cand > champ * (1 + tolerance) and cand - champ > noise):
                failures.append(f"{words[metric]} on {comparison.name} ({comparison.n}): {shown}")
            elif metric == "mape":
                summary.append(f"average error on {comparison.name} ({comparison.n}): {shown}")
    if failures:
        return False, (
            "not promoted: the candidate is worse than the champion beyond the "
            f"{100 * tolerance:g}% tolerance and beyond the held-out set's noise — "
            + "; ".join(failures)
        )
    return True, "promoted: candidate not worse than the champion — " + "; ".join(summary)
