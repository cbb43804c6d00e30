"""Everything the counter shows for one stone, computed once per stone and model version: the
quote, what-if grades, the trade's price-per-carat grid, the carat curve and the comparables.
The customer quote (`reports.quote_sheet`) is made from the same quote, so the page and the paper
cannot disagree."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from diamond_model.learning.versions import Champion
from diamond_model.pricing.comparables import CARAT_WINDOW, closest
from diamond_model.pricing.quote import Quote, quote_stone
from diamond_model.reports.analysis import carat_curve, price_per_carat_grid, what_if
from diamond_model.storage.store import Store

COMPARABLES = 8


@dataclass(frozen=True)
class StonePage:
    """One stone as the counter shows it (InvalidStoneError from `stone_page` when it cannot
    be priced)."""

    version: int
    stone: dict[str, object]
    quote: Quote
    what_if: pd.DataFrame
    grid: pd.DataFrame
    curve: pd.DataFrame
    comparables: pd.DataFrame


def stone_page(
    champion: Champion, stone: dict[str, object], level: float, store: Store
) -> StonePage:
    """Price the stone and everything around it with one model version."""
    model = champion.model
    quote = quote_stone(model, stone, level)  # raises InvalidStoneError before anything else
    return StonePage(
        version=champion.version,
        stone=dict(stone),
        quote=quote,
        what_if=what_if(model, stone, level),
        grid=price_per_carat_grid(model, stone, level),
        curve=carat_curve(model, stone, level),
        comparables=closest(
            store.comparables(stone, CARAT_WINDOW, COMPARABLES), stone, COMPARABLES
        ),
    )
