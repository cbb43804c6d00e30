"""Suspect prices: a price farther from the serving model's than its own errors allow, with the
slip that most likely made it (×10, ÷10, ×1000, a price per carat typed as the price).

The threshold is each model's `suspect_limit`: the 99.9th percentile of its out-of-fold errors in
log price (0.495 on the bundled data: ×1.64 or ÷1.64), so about 1 genuine price in 1,000 is a
suspect. `learning.preview.live_score` finds them; storing holds them for review.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# Beyond this share of suspects the file, not its rows, is wrong: genuine batches have about
# 0.1 % by construction (the threshold is the model's 99.9th-percentile error), 40 decimal slips
# in 300 rows are 13 %, a batch with its prices shuffled measures 70-78 % (`test_suspects`).
SUSPECT_SHARE_LIMIT = 0.25
# Likely causes, by how far a price sits from the model's in log terms; a cause is named when
# the price is within CAUSE_TOLERANCE (about ±40 %) of what that slip would give.
CAUSE_TOLERANCE = 0.35
SLIPS = (
    (math.log(10), "×10: a decimal slip (one digit too many)", 0.1),
    (-math.log(10), "÷10: a decimal slip (one digit short)", 10.0),
    (math.log(1000), "×1000: the price typed with three extra zeros", 0.001),
    (-math.log(1000), "÷1000: the price typed in thousands", 1000.0),
)
PER_CARAT = "a price per carat typed as the price"


@dataclass(frozen=True)
class Suspect:
    """One price far outside what the model's own errors allow, with a likely cause."""

    line: int
    price: float
    model_price: float  # at the batch's level
    cause: str  # "" when no usual slip explains it
    likely_price: float | None  # what the price would be without that slip

    def words(self) -> str:
        off = self.price / self.model_price
        how = f"×{off:.1f}" if off >= 1 else f"÷{1 / off:.1f}"
        cause = f": likely {self.cause}" if self.cause else ""
        fix = f" (${self.likely_price:,.0f}?)" if self.likely_price is not None else ""
        return (
            f"line {self.line}: ${self.price:,.0f} against the model's ${self.model_price:,.0f} "
            f"({how}){cause}{fix}"
        )


def likely_cause(deviation: float, carat: float) -> tuple[str, float | None]:
    """(cause, factor to multiply the price by) for a log deviation, or ("", None)."""
    options = [(abs(deviation - at), words, factor) for at, words, factor in SLIPS]
    if carat > 0 and abs(math.log(carat)) > CAUSE_TOLERANCE:
        options.append((abs(deviation + math.log(carat)), PER_CARAT, carat))
    distance, words, factor = min(options)
    return (words, factor) if distance <= CAUSE_TOLERANCE else ("", None)
