"""Do the measurements belong to this stone? Carat against millimetres, depth % against x, y, z.

Carat is what the trade weighs and prices by, so it is the anchor: millimetres that imply another
weight (see `schema.SIZE_CONSTANT`) are set aside, and so is a depth % that disagrees with
millimetres we trust. Set-aside values become missing for that stone only; the stone is still
priced (from what remains) and an appraisal is still stored, with a note saying what and why.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple

import numpy as np

from diamond_model.data.schema import (
    DEPTH_TOLERANCE_POINTS,
    SIZE_AXES,
    SIZE_CONSTANT,
    SIZE_TOLERANCE,
)


class FindingKind(StrEnum):
    """What a finding is about, for code that acts on it (the words are for people)."""

    RULE = "rule"  # a validation rule: the reason says which and how to fix it
    SIZE_CONFLICT = "size_conflict"  # the millimetres imply another weight: x, y, z set aside
    DEPTH_CONFLICT = "depth_conflict"  # depth % disagrees with trusted millimetres: set aside


class Finding(NamedTuple):
    """One finding about one row: where, the value as given, the reason in words, and for a
    conflict its kind and the figure behind it (the carat the millimetres imply, or the depth %
    they give)."""

    position: int
    column: str
    value: str
    reason: str
    kind: FindingKind = FindingKind.RULE
    figure: float = math.nan


@dataclass(frozen=True)
class Screened:
    """Measurements after the consistency checks, and what was set aside."""

    columns: dict[str, np.ndarray]
    notes: list[Finding]
    size_conflict: np.ndarray
    depth_conflict: np.ndarray
    implied_carat: np.ndarray


def _apart(implied: float, weighed: float) -> str:
    if implied > 1000 * weighed:  # before dividing: a weight like 5e-324 ct would overflow
        return "over 1,000 times"
    ratio = implied / weighed
    if ratio >= 2:
        return f"{ratio:.1f} times"
    if ratio <= 0.5:
        return f"{1 / ratio:.1f} times less than"
    return f"{abs(100 * (ratio - 1)):.0f} % {'less' if ratio < 1 else 'more'} than"


def _mm(x: float, y: float, z: float) -> str:
    return f"{x:g} × {y:g} × {z:g} mm"


def screen(columns: dict[str, np.ndarray]) -> Screened:
    """Set aside millimetres that disagree with the carat, and a depth % that disagrees with them.

    `columns` holds parsed numbers (NaN where missing or already set aside); a new dict is returned.
    """
    out = dict(columns)
    carat = columns["carat"]
    x, y, z = (columns[axis] for axis in SIZE_AXES)
    with np.errstate(invalid="ignore", divide="ignore"):
        implied = SIZE_CONSTANT * ((x + y) / 2) ** 2 * z
        gap = np.log(carat / implied)
    size_conflict = np.abs(gap) > SIZE_TOLERANCE
    notes: list[Finding] = []
    for position in np.flatnonzero(size_conflict).tolist():
        weight, mm = carat[position], implied[position]
        notes.append(
            Finding(
                position,
                "x,y,z",
                _mm(x[position], y[position], z[position]),
                f"the millimetres imply {mm:.2f} ct, {_apart(mm, weight)} the {weight:g} ct "
                "weighed: the millimetres are not used, the weight prices the stone",
                FindingKind.SIZE_CONFLICT,
                float(mm),
            )
        )
    if size_conflict.any():
        for axis in SIZE_AXES:
            out[axis] = np.where(size_conflict, np.nan, columns[axis])

    trusted = ~np.isnan(out["x"]) & ~np.isnan(out["y"]) & ~np.isnan(out["z"])
    with np.errstate(invalid="ignore", divide="ignore"):
        depth_from_mm = 200.0 * out["z"] / (out["x"] + out["y"])
        depth_conflict = trusted & (
            np.abs(depth_from_mm - columns["depth"]) > DEPTH_TOLERANCE_POINTS
        )
    for position in np.flatnonzero(depth_conflict).tolist():
        notes.append(
            Finding(
                position,
                "depth",
                f"{columns['depth'][position]:g}",
                f"depth {columns['depth'][position]:g} % disagrees with the millimetres, which "
                f"give {depth_from_mm[position]:.1f} % (tolerance "
                f"±{DEPTH_TOLERANCE_POINTS:g} points): not used",
                FindingKind.DEPTH_CONFLICT,
                float(depth_from_mm[position]),
            )
        )
    if depth_conflict.any():
        out["depth"] = np.where(depth_conflict, np.nan, columns["depth"])
    return Screened(
        columns=out,
        notes=notes,
        size_conflict=size_conflict,
        depth_conflict=depth_conflict,
        implied_carat=implied,
    )


def has_size(columns: dict[str, np.ndarray]) -> np.ndarray:
    """Rows whose x, y and z are all usable (the full model needs the three)."""
    missing: np.ndarray = np.isnan(columns["x"]) | np.isnan(columns["y"]) | np.isnan(columns["z"])
    return ~missing


def complete(
    columns: dict[str, np.ndarray], typical_table: float
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Fill what the full model needs on rows with usable millimetres: depth % from x, y, z (its
    definition) and a missing table % with the typical one (table moves prices by under 1 %).

    Returns the completed columns and the masks of derived depths and assumed tables.
    """
    sized = has_size(columns)
    with np.errstate(invalid="ignore", divide="ignore"):
        derived = sized & np.isnan(columns["depth"])
        assumed = sized & np.isnan(columns["table"])
        out = dict(columns)
        if derived.any():
            depth = 200.0 * columns["z"] / (columns["x"] + columns["y"])
            out["depth"] = np.where(derived, depth, columns["depth"])
        if assumed.any():
            out["table"] = np.where(assumed, typical_table, columns["table"])
    return out, derived, assumed


_NUMBER = r"(\d+(?:[.,]\d+)?)"
_REPORT = re.compile(
    rf"\s*{_NUMBER}\s*[-–—x×*]\s*{_NUMBER}\s*[x×*]\s*{_NUMBER}\s*(?:mm)?\s*", re.IGNORECASE
)


def parse_report(text: str) -> tuple[float, float, float]:
    """(x, y, z) from measurements as a grading report writes them: '6.10 – 6.15 × 3.80 mm'
    (smallest and largest girdle diameter, then total depth), or '6.10 x 6.15 x 3.80'."""
    match = _REPORT.fullmatch(text)
    if match is None:
        raise ValueError(
            f"'{text.strip()}' is not read as measurements: write them as a report does, "
            "e.g. 6.10 – 6.15 × 3.80 mm (length – width × depth)"
        )
    x, y, z = (float(group.replace(",", ".")) for group in match.groups())
    return x, y, z
