"""The one-page quote a jeweller prints or e-mails: the stone, price, range, confidence and its
reasons, three comparable appraisals, the date, the model version and the shop's name."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import cast

import pandas as pd
from fpdf import FPDF

from diamond_model.pricing.quote import Quote
from diamond_model.words import sentence

# The PDF's built-in fonts speak Latin-1; these are the few characters our sentences use beyond it.
PLAIN = str.maketrans(
    {"–": "-", "—": "-", "…": "...", "’": "'", "“": '"', "”": '"', "≤": "<=", "≥": ">="}
)


def _latin1(text: str) -> str:
    return text.translate(PLAIN).encode("latin-1", "replace").decode("latin-1")


@dataclass(frozen=True)
class QuoteSheet:
    """Everything printed on the page."""

    shop: str
    stone: str
    quote: Quote
    model_version: int
    comparables: pd.DataFrame
    on: date
    quote_id: str | None = None


def quote_pdf(sheet: QuoteSheet) -> bytes:
    """One A4 page, as bytes."""
    quote = sheet.quote
    pdf = FPDF(format="A4")
    pdf.set_title(_latin1(f"Quote - {sheet.stone}"))
    pdf.set_author(_latin1(sheet.shop))
    pdf.add_page()
    pdf.set_margins(18, 18, 18)

    def line(text: str, size: float = 11, style: str = "", height: float = 6) -> None:
        pdf.set_font("Helvetica", style=style, size=size)
        pdf.multi_cell(0, height, _latin1(text), new_x="LMARGIN", new_y="NEXT")

    line(sheet.shop, 18, "B", 9)
    line(f"Diamond appraisal quote, {sheet.on:%d %B %Y}", 11, "", 6)
    pdf.ln(4)
    line(sheet.stone, 13, "B", 7)
    pdf.ln(2)
    line(f"Estimated price: ${quote.price:,.0f}", 16, "B", 9)
    line(
        f"Likely range: ${quote.low:,.0f} - ${quote.high:,.0f} "
        f"({100 * quote.level:.0f} % of real prices fall inside)   "
        f"Price per carat: ${quote.price_per_carat:,.0f}"
    )
    line(f"Confidence: {quote.confidence}", 11, "B")
    for reason in quote.reasons:
        line(f"- {sentence(reason)}.", 10, "", 5)
    if quote.warnings:
        pdf.ln(1)
        line("Notes on the inputs:", 11, "B")
        for warning in quote.warnings:
            line(f"- {sentence(warning)}.", 10, "", 5)
    if quote.explanation is not None:
        pdf.ln(2)
        line("Why this price:", 11, "B")
        for step in quote.explanation.sentences:
            line(f"- {step}", 10, "", 5)
    pdf.ln(2)
    line("Comparable stones our expert appraised:", 11, "B")
    if sheet.comparables.empty:
        line("None within one grade and 25 % of the weight.", 10)
    for row in sheet.comparables.head(3).itertuples(index=False):
        appraised = pd.Timestamp(cast(date, row.appraised_on))  # a date column; stubs: any cell
        line(
            f"- {row.carat:.2f} ct {row.cut} {row.color} {row.clarity}: ${row.price:,.0f} "
            f"(appraised {appraised:%d %b %Y})",
            10,
            "",
            5,
        )
    pdf.ln(4)
    reference = f", quote {sheet.quote_id}" if sheet.quote_id else ""
    line(
        f"Priced by model v{sheet.model_version} at the {quote.market.period} market level"
        f"{reference}. An estimate from past appraisals, not a certificate.",
        8,
        "I",
        4,
    )
    return bytes(pdf.output())
