"""Pricing checked stones in bulk: which regressor, the estimate at a market level, the range and
the confidence, and (on request) the contributions behind each price.

Stones arrive as checked columns (`validation.check`): numbers with NaN where missing or set
aside, grades as rank codes. This is the one path under quotes, batch files, evaluation and the
retraining gate, so a price means the same thing wherever it is shown.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from diamond_model.data.measurements import complete, has_size
from diamond_model.enums import Inputs
from diamond_model.pricing.confidence import Assessment, Domain, Judgement, assess, judge
from diamond_model.pricing.intervals import SPREAD_FEATURES
from diamond_model.pricing.model import PricingModel, encode_columns


@dataclass(frozen=True)
class Estimates:
    """Per stone: inputs used, log estimate (market level included), price and range in dollars,
    the confidence, what was filled in, and the contributions when asked for."""

    columns: dict[str, np.ndarray]
    full: np.ndarray
    log_price: np.ndarray
    market_log: np.ndarray
    price: np.ndarray
    low: np.ndarray
    high: np.ndarray
    judged: Judgement
    conflicts: list[tuple[str, ...]]
    derived_depth: np.ndarray
    assumed_table: np.ndarray
    contributions: list[np.ndarray | None]

    def inputs(self, position: int) -> Inputs:
        return Inputs.ALL if self.full[position] else Inputs.FOUR_C

    def assessment(self, domain: Domain, position: int) -> Assessment:
        """The confidence of one stone with its reasons in words."""
        return assess(
            domain,
            self.judged,
            position,
            float(self.columns["carat"][position]),
            int(self.columns["color"][position]),
            int(self.columns["clarity"][position]),
            self.conflicts[position],
        )


def estimate_prices(
    model: PricingModel,
    columns: dict[str, np.ndarray],
    level: float,
    months: np.ndarray | None = None,
    conflicts: list[tuple[str, ...]] | None = None,
    explain: bool = False,
) -> Estimates:
    """Price every stone; `months` (month numbers) prices each at its own month's market level
    (evaluation), otherwise all at the latest level (quotes)."""
    n = len(columns["carat"])
    full = has_size(columns)
    columns, derived, assumed = complete(columns, model.typical["table"])
    stone_log = np.empty(n)
    contributions: list[np.ndarray | None] = [None] * n
    for inputs, rows in ((Inputs.ALL, full), (Inputs.FOUR_C, ~full)):
        index = np.flatnonzero(rows)
        if not len(index):
            continue
        regressor = model.regressor(inputs)
        matrix = encode_columns(columns, regressor.features, None if len(index) == n else index)
        if explain:
            logs, phi = model.explainer(inputs).contributions(matrix)
            for k, position in enumerate(index.tolist()):
                contributions[position] = phi[k]
        else:
            logs = regressor.predict_log_matrix(matrix)
        stone_log[index] = logs
    market_log = (
        np.full(n, model.market.latest_level) if months is None else model.market.at(months)
    )
    log_price = stone_log + market_log
    price = np.round(np.exp(log_price), 2)

    conflicts = conflicts or [()] * n
    conflicted = np.fromiter((bool(c) for c in conflicts), dtype=bool, count=n)
    judged = judge(model.domain, columns["carat"], columns["color"], columns["clarity"], conflicted)
    widen = judged.widen
    low, high = np.empty(n), np.empty(n)
    features = encode_columns(columns, SPREAD_FEATURES)
    for inputs, rows in ((Inputs.ALL, full), (Inputs.FOUR_C, ~full)):
        if rows.any():
            log_low, log_high = model.spreads[inputs].offsets(features[rows], level, widen[rows])
            low[rows] = np.exp(log_price[rows] + log_low)
            high[rows] = np.exp(log_price[rows] + log_high)
    return Estimates(
        columns=columns,
        full=full,
        log_price=log_price,
        market_log=market_log,
        price=price,
        low=np.round(np.minimum(low, price), 2),
        high=np.round(np.maximum(high, price), 2),
        judged=judged,
        conflicts=conflicts,
        derived_depth=derived,
        assumed_table=assumed,
        contributions=contributions,
    )
