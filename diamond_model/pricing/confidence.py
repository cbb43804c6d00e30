"""How sure a quote can be: what the model has seen, and a level (high, medium, low) with reasons.

A price is as good as the appraisals behind it. The reasons count the stored appraisals like this
stone (same colour and clarity, same size band), say when the weight is beyond the data (an
extrapolation), when a grade combination is rare or absent, and when inputs disagreed. Low
confidence also widens the range: the conformal calibration measures errors where the data are,
and says nothing about stones it never saw.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from diamond_model.data.schema import CLARITIES, COLORS, GRADES, MEASUREMENTS
from diamond_model.enums import Confidence
from diamond_model.words import band_labels

SIZE_BANDS: tuple[float, ...] = (0.5, 1.0, 1.5, 2.0)  # upper edges; the last band is open
ENOUGH_LIKE = 30  # appraisals like the stone for high confidence; fewer: medium
# Low confidence (no appraisal like the stone, or a weight beyond those seen) stretches the range
# by half, in log units. This is a judgement, not a measurement: by definition there is no data
# to calibrate it on. Where there is some data the calibrated ranges hold without it: on the
# bundled appraisals (`evaluation.compare_intervals`), stones with 1–9 like them were covered 91 %
# of the time, as often as the rest, so "few like it" lowers confidence to medium and says so,
# but does not widen.
LOW_WIDEN = 1.5
# Inputs that disagree (millimetres against carat, depth against millimetres) mean one of them
# was mistyped: the stone is priced from the inputs we trust, and its range stretched by a quarter
# for the chance that the trusted one was the wrong one (a judgement, said in the reasons).
CONFLICT_WIDEN = 1.25
# Beyond the heaviest stone seen, the range grows with the distance: +100 % width per doubling.
EXTRAPOLATION_WIDEN_PER_LOG2 = 1.0


def size_band(carat: ArrayLike) -> NDArray[np.intp]:
    """0 for ≤ 0.5 ct, 1 for 0.5–1 ct, … 4 for more than 2 ct."""
    return np.searchsorted(np.asarray(SIZE_BANDS), np.asarray(carat, dtype=float), side="left")


def band_words(band: int) -> str:
    """'weighing 0.5–1 ct' for size band 1 (the labels tables use)."""
    return f"weighing {band_labels((0.0, *SIZE_BANDS, float('inf')), 'ct')[band]}"


@dataclass(frozen=True)
class Domain:
    """What the model has seen: numeric ranges and appraisals per colour × clarity × size band."""

    ranges: dict[str, tuple[float, float]]
    support: np.ndarray
    n: int

    @classmethod
    def of(cls, frame: pd.DataFrame) -> Domain:
        ranges = {
            c: (float(frame[c].min()), float(frame[c].max()))
            for c in ("carat", *MEASUREMENTS)
            if frame[c].notna().any()
        }
        support = np.zeros((len(COLORS), len(CLARITIES), len(SIZE_BANDS) + 1), dtype=np.int64)
        np.add.at(
            support,
            (_codes(frame["color"]), _codes(frame["clarity"]), size_band(frame["carat"])),
            1,
        )
        return cls(ranges=ranges, support=support, n=len(frame))

    def like(self, color: int, clarity: int, carat: float) -> int:
        """Appraisals with this colour and clarity in the stone's size band."""
        return int(self.support[color, clarity, size_band(carat)])


def _codes(values: pd.Series) -> np.ndarray:
    if isinstance(values.dtype, pd.CategoricalDtype):
        return values.cat.codes.to_numpy()
    return values.to_numpy()


LEVELS: tuple[Confidence, ...] = (Confidence.LOW, Confidence.MEDIUM, Confidence.HIGH)


@dataclass(frozen=True)
class Judgement:
    """Per stone, vectorised: the level (an index into LEVELS), how much to stretch the range,
    the appraisals like it, and whether its weight is beyond those seen."""

    level: np.ndarray
    widen: np.ndarray
    like: np.ndarray
    beyond: np.ndarray

    def confidence(self, position: int) -> Confidence:
        return LEVELS[int(self.level[position])]


def judge(
    domain: Domain,
    carat: np.ndarray,
    color: np.ndarray,
    clarity: np.ndarray,
    conflicted: np.ndarray,
) -> Judgement:
    """The rules, for every stone at once (grades as rank codes, `conflicted`: inputs disagreed).

    Beyond the weights seen, or no appraisal like it: low, the range stretched by half (and by
    the extrapolation's distance beyond the heaviest). Fewer than ENOUGH_LIKE like it, or inputs
    that disagreed: at most medium (disagreeing inputs stretch the range by a quarter)."""
    carat = np.asarray(carat, dtype=float)
    low_ct, high_ct = domain.ranges["carat"]
    like = domain.support[np.asarray(color, int), np.asarray(clarity, int), size_band(carat)]
    above, below = carat > high_ct, carat < low_ct
    beyond = above | below
    none = like == 0
    widen = np.where(beyond | none, LOW_WIDEN, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        widen = widen + np.where(above, EXTRAPOLATION_WIDEN_PER_LOG2 * np.log2(carat / high_ct), 0)
    widen = np.where(conflicted, np.maximum(widen, CONFLICT_WIDEN), widen)
    level = np.where((like < ENOUGH_LIKE) | conflicted, 1, 2)
    level = np.where(beyond | none, 0, level)
    return Judgement(level=level, widen=widen, like=like, beyond=beyond)


@dataclass(frozen=True)
class Assessment:
    """A quote's confidence level, its reasons in words, and how much to stretch its range."""

    level: Confidence
    reasons: tuple[str, ...]
    concerns: tuple[str, ...]
    widen: float
    # Beyond the weights seen, or a grade combination in that size band the data has none of:
    # either way the price comes from the model's shape, not from stones like this one.
    extrapolated: bool = False


def like_words(like: int, color: int, clarity: int, band: int) -> str:
    """How many appraisals are like the stone, in words: a concern below ENOUGH_LIKE."""
    grades = f"{GRADES['color'][color]} {GRADES['clarity'][clarity]}"
    if like == 0:
        return (
            f"none of our appraisals is a {grades} stone {band_words(band)}: the range is "
            "wider for it"
        )
    if like < ENOUGH_LIKE:
        if like == 1:
            return f"only 1 of our appraisals is a {grades} stone {band_words(band)}"
        return f"only {like} of our appraisals are {grades} stones {band_words(band)}"
    return f"{like:,} of our appraisals are {grades} stones {band_words(band)}"


def assess(
    domain: Domain,
    judgement: Judgement,
    position: int,
    carat: float,
    color: int,
    clarity: int,
    conflicts: tuple[str, ...] = (),
) -> Assessment:
    """One judged stone in words (grades as rank codes); `conflicts` are sentences about inputs
    set aside."""
    reasons: list[str] = []
    concerns: list[str] = []
    low_ct, high_ct = domain.ranges["carat"]
    like = int(judgement.like[position])
    if judgement.beyond[position]:
        bound = "heavier than the heaviest" if carat > high_ct else "lighter than the lightest"
        concerns.append(
            f"{carat:g} ct is {bound} stone in our appraisals ({low_ct:g}–{high_ct:g} ct): "
            "the price is an extrapolation"
        )
    sentence = like_words(like, color, clarity, int(size_band(carat)))
    (concerns if like < ENOUGH_LIKE else reasons).append(sentence)
    concerns.extend(conflicts)
    return Assessment(
        level=judgement.confidence(position),
        reasons=tuple(concerns + reasons),
        concerns=tuple(concerns),
        widen=float(judgement.widen[position]),
        extrapolated=bool(judgement.beyond[position]) or like == 0,
    )
