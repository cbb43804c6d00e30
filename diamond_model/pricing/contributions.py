"""Turning exact log-price contributions into a dollar waterfall a salesperson can read aloud.

The model is additive in log(price) against one concrete reference, the typical stone of the
appraisals it learned from: log p = log p(typical) + Σ φ_feature + market level. Applying the
contributions one after the other multiplies the price by e^φ at each step, so the dollar steps
telescope: cumulative prices are rounded to cents and each step is the difference of two of
them, so the starting price plus the steps equals the quoted price to the cent.

Steps come in a fixed order so two stones read alike: size (carat and millimetres, one story),
cut, colour, clarity, then the rest (depth, table, market level); a step of the rest that moves
the price by less than 1 % joins "Other".
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from diamond_model.data.schema import GRADES
from diamond_model.pricing.shape import SHAPE_FEATURES

MAIN_STEPS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("size", "Size", ("carat", "x", "y", "z")),
    ("cut", "Cut", ("cut",)),
    ("color", "Colour", ("color",)),
    ("clarity", "Clarity", ("clarity",)),
)
REST_STEPS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("depth", "Depth", ("depth",)),
    ("table", "Table", ("table",)),
)
OTHER_BELOW_PERCENT = 1.0


class Part(NamedTuple):
    """One input inside a step (carat and each millimetre inside "Size")."""

    feature: str
    value: str
    log_effect: float
    percent: float
    dollars: float


class Step(NamedTuple):
    """One group of inputs moving the price from the previous running total to the next.
    (Named tuples: a quote builds about ten of these, at half a dataclass's cost.)"""

    feature: str
    label: str
    value: str
    log_effect: float
    percent: float
    dollars: float
    price_after: float
    parts: tuple[Part, ...] = ()

    @property
    def sentence(self) -> str:
        verb = "adds" if self.dollars >= 0 else "takes off"
        what = f"{self.label} {self.value}".strip()
        return (
            f"{what} {verb} ${abs(self.dollars):,.0f} ({self.percent:+.1f}%) compared with the "
            "typical stone"
        )


@dataclass(frozen=True)
class Explanation:
    """The typical stone and its price, the ordered steps, and the final price they add up to."""

    base_log: float
    base_price: float
    base_stone: str  # the typical stone's description: "0.70 ct Ideal G VS2 (5.70 × ...)"
    steps: tuple[Step, ...]
    price: float

    @property
    def base_words(self) -> str:
        """The starting point as a sentence says it."""
        return f"a typical stone in our appraisals ({self.base_stone})"

    @property
    def sentences(self) -> list[str]:
        return [f"Starting point: {self.base_words}, ${self.base_price:,.0f}."] + [
            step.sentence for step in self.steps
        ]


def shown(feature: str, value: float) -> str:
    """An input as people write it (grades by name, carat to the hundredth, with units)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "(not used)"
    if feature in GRADES:
        return GRADES[feature][int(value)]
    if feature == "carat":
        return f"{float(value):.2f} ct"
    if feature in ("depth", "table"):
        return f"{float(value):.1f} %"
    return f"{float(value):.2f} mm"


def stone_words(values: dict[str, float]) -> str:
    """'0.70 ct, Ideal, G, SI1, 5.70 × 5.71 × 3.52 mm, depth 61.8 %, table 57.0 %'."""
    words = [shown("carat", values["carat"])] + [shown(g, values[g]) for g in GRADES]
    if all(axis in values for axis in ("x", "y", "z")):
        words.append(" × ".join(f"{values[a]:.2f}" for a in ("x", "y", "z")) + " mm")
    for name in ("depth", "table"):
        if name in values:
            words.append(f"{name} {shown(name, values[name])}")
    return ", ".join(words)


def explain(
    base_log: float,
    contributions: np.ndarray,
    features: list[str],
    values: dict[str, float],
    base_stone: str,
    market: tuple[str, float] | None = None,
    final_price: float | None = None,
) -> Explanation:
    """Waterfall from the typical stone's price to this stone's, in the fixed order.

    `values` are the inputs as used (grades as rank codes), `market` the period and log level
    the price was set at, `final_price` the quoted price the steps must reach exactly.
    """
    phi = dict(zip(features, contributions.tolist(), strict=True))
    for derived, sources in SHAPE_FEATURES.items():  # read from the millimetres: theirs to share
        if derived in phi:
            share = phi.pop(derived) / len(sources)
            for source in sources:
                phi[source] += share
    moves: list[tuple[str, str, str, float, tuple[tuple[str, str, float], ...]]] = []
    for key, label, members in MAIN_STEPS:
        if key == "size":
            parts = tuple((m, shown(m, values[m]), phi[m]) for m in members if m in phi)
            effect = sum(part[2] for part in parts)
            moves.append((key, label, _size_words(values), effect, parts))
        else:
            moves.append((key, label, shown(key, values[key]), phi[key], ()))
    rest = [
        (key, label, shown(key, values[key]), phi[key], ())
        for key, label, (member,) in REST_STEPS
        if member in phi
    ]
    if market is not None and market[1] != 0.0:
        rest.append(("market", "Market level", market[0], market[1], ()))
    small = [abs(math.expm1(move[3])) * 100 < OTHER_BELOW_PERCENT for move in rest]
    moves += [move for move, tiny in zip(rest, small, strict=True) if not tiny]
    if any(small):
        tiny = [move for move, is_small in zip(rest, small, strict=True) if is_small]
        names = ", ".join(move[1].lower() for move in tiny)
        moves.append(("other", "Other", f"({names})", sum(move[3] for move in tiny), ()))
    return _chain(base_log, base_stone, moves, final_price)


def _size_words(values: dict[str, float]) -> str:
    carat = shown("carat", values["carat"])
    if all(not math.isnan(values.get(a, math.nan)) for a in ("x", "y", "z")):
        return f"{carat} ({' × '.join(f'{values[a]:.2f}' for a in ('x', 'y', 'z'))} mm)"
    return carat


def _chain(
    base_log: float,
    base_stone: str,
    moves: list[tuple[str, str, str, float, tuple[tuple[str, str, float], ...]]],
    final_price: float | None,
) -> Explanation:
    """Cumulative prices rounded to cents; each step is the difference of two of them."""
    base = round(math.exp(base_log), 2)
    log_price, price, steps = base_log, base, []
    for k, (key, label, value, effect, parts) in enumerate(moves):
        log_price += effect
        after = round(math.exp(log_price), 2)
        if final_price is not None and k == len(moves) - 1:
            after = final_price
        dollars = round(after - price, 2)
        steps.append(
            Step(
                feature=key,
                label=label,
                value=value,
                log_effect=effect,
                percent=100 * math.expm1(effect),
                dollars=dollars,
                price_after=after,
                parts=_parts(parts, effect, dollars) if parts else (),
            )
        )
        price = after
    return Explanation(
        base_log=base_log, base_price=base, base_stone=base_stone, steps=tuple(steps), price=price
    )


def _parts(
    parts: tuple[tuple[str, str, float], ...], effect: float, dollars: float
) -> tuple[Part, ...]:
    """A step's dollars shared among its inputs by their log effects, to the cent."""
    if not parts:
        return ()
    cents = round(dollars * 100)
    shares = [phi / effect if effect else 1 / len(parts) for _, _, phi in parts]
    split = [round(cents * share) for share in shares]
    split[max(range(len(parts)), key=lambda i: abs(shares[i]))] += cents - sum(split)
    return tuple(
        Part(
            feature=feature,
            value=value,
            log_effect=phi,
            percent=100 * math.expm1(phi),
            dollars=amount / 100,
        )
        for (feature, value, phi), amount in zip(parts, split, strict=True)
    )
