"""Turning exact log-price contributions into a dollar waterfall a salesperson can read aloud.

The model is additive in log(price): log p = base + Σ φ_feature. Applying the features one after
the other multiplies the price by e^φ at each step, so the dollar steps telescope and add up
exactly to the quoted price; each step's percentage e^φ - 1 does not depend on the order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from diamond_model.schema import LABELS

# x, y and z are three views of one thing (the stone's size in millimetres); one step reads better.
GROUPS: dict[str, tuple[str, ...]] = {"measurements": ("x", "y", "z")}
GROUP_LABELS: dict[str, str] = {"measurements": "Measurements x·y·z"}


@dataclass(frozen=True)
class Step:
    """One feature's move from the previous price to the next."""

    feature: str
    label: str
    value: str
    log_effect: float
    percent: float
    dollars: float
    price_after: float

    @property
    def sentence(self) -> str:
        verb = "adds" if self.dollars >= 0 else "takes off"
        return (
            f"{self.label} {self.value} {verb} ${abs(self.dollars):,.0f} "
            f"({self.percent:+.1f}%) compared with a typical stone"
        ).replace("  ", " ")


@dataclass(frozen=True)
class Explanation:
    """Base price, the ordered steps, and the final price they add up to."""

    base_log: float
    base_price: float
    steps: tuple[Step, ...]
    price: float

    @property
    def sentences(self) -> list[str]:
        return [step.sentence for step in self.steps]


def _format(feature: str, value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "(not given)"
    if feature == "carat":
        return f"{float(value):.2f} ct"
    if feature in ("depth", "table"):
        return f"{float(value):.1f} %"
    return str(value)


def explain(
    base_log: float,
    contributions: np.ndarray,
    features: list[str],
    values: dict[str, object],
) -> Explanation:
    """Waterfall from e^base to e^(base + Σφ), biggest moves first."""
    effects: dict[str, tuple[str, str, float]] = {}
    grouped = {member: group for group, members in GROUPS.items() for member in members}
    for name, phi in zip(features, contributions, strict=True):
        key = grouped.get(name, name)
        if key in GROUPS:
            label, shown = GROUP_LABELS[key], _measurements(values)
        else:
            label, shown = LABELS[name].removesuffix(" %"), _format(name, values.get(name))
        previous = effects.get(key, (label, shown, 0.0))
        effects[key] = (label, shown, previous[2] + float(phi))

    ordered = sorted(effects.items(), key=lambda item: -abs(item[1][2]))
    return _chain(base_log, [(key, label, shown, phi) for key, (label, shown, phi) in ordered])


def _chain(base_log: float, moves: list[tuple[str, str, str, float]]) -> Explanation:
    """Cumulative prices rounded to cents; each step is the difference of two of them, so the
    base plus the steps equals the final price to the cent."""
    base = round(math.exp(base_log), 2)
    log_price, price, steps = base_log, base, []
    for key, label, shown, phi in moves:
        log_price += phi
        after = round(math.exp(log_price), 2)
        steps.append(
            Step(key, label, shown, phi, 100 * math.expm1(phi), round(after - price, 2), after)
        )
        price = after
    return Explanation(base_log=base_log, base_price=base, steps=tuple(steps), price=price)


def _measurements(values: dict[str, object]) -> str:
    parts = [values.get(axis) for axis in ("x", "y", "z")]
    if any(p is None or (isinstance(p, float) and math.isnan(p)) for p in parts):
        return "(not given)"
    return " × ".join(f"{float(p):.2f}" for p in parts) + " mm"


def group_small(explanation: Explanation, min_percent: float) -> Explanation:
    """Merge steps that move the price by less than `min_percent` into one 'Other features' step."""
    keep = [s for s in explanation.steps if abs(s.percent) >= min_percent]
    small = [s for s in explanation.steps if abs(s.percent) < min_percent]
    if len(small) < 2:
        return explanation
    moves = [(s.feature, s.label, s.value, s.log_effect) for s in keep]
    moves.append(("other", "Other features", "", sum(s.log_effect for s in small)))
    return _chain(explanation.base_log, moves)
