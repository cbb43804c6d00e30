"""Tables the counter shows (page 1): what-if grades, the colour × clarity grid, comparables, a
priced list with its unpriced rows first. Shaped for people, laid out by the page."""

from __future__ import annotations

import numpy as np
import pandas as pd

from app.views import literal
from diamond_model.enums import Inputs
from diamond_model.pricing.quote import Quote
from diamond_model.reports.quote_sheet import quote_number
from diamond_model.words import month_words


def stone_title(stone: dict[str, object]) -> str:
    """'1.00 ct Very Good G VS1, 6.10 × 6.15 × 3.80 mm' for headings and printed quotes."""
    words = f"{float(stone['carat']):.2f} ct {stone['cut']} {stone['color']} {stone['clarity']}"
    if all(stone.get(axis) is not None for axis in ("x", "y", "z")):
        words += ", " + " × ".join(f"{float(stone[a]):.2f}" for a in ("x", "y", "z")) + " mm"
    return words


GRID_UNIT = 100  # trade price lists write hundreds of dollars per carat: 39 is $3,900


def highlighted_grid(grid: pd.DataFrame, color: str, clarity: str) -> object:
    """The price-per-carat grid in hundreds of dollars, as trade lists write it (narrow enough
    for all eight clarities on a phone), with this stone's cell marked."""

    def mark(column: pd.Series) -> list[str]:
        return [
            "background-color: #1f3b57; color: white; font-weight: bold"
            if column.name == clarity and row == color
            else ""
            for row in column.index
        ]

    return (grid / GRID_UNIT).style.format("{:,.0f}").apply(mark)


GRADE_NAMES = {"cut": "Cut", "color": "Colour", "clarity": "Clarity"}  # as the inputs say


def what_if_table(changes: pd.DataFrame) -> pd.DataFrame:
    """One grade up or down per row: the change, the price and the difference (narrow enough
    for a phone)."""
    return pd.DataFrame(
        {
            "Change": changes["grade"].map(GRADE_NAMES)
            + " "
            + changes["from"]
            + " → "
            + changes["to"],
            "Price": changes["price"].map(lambda v: f"${v:,.0f}"),
            "Difference": [
                f"{'+' if d >= 0 else '−'}${abs(d):,.0f} ({p:+.1f}%)"
                for d, p in zip(changes["difference"], changes["percent"], strict=True)
            ],
        }
    )


def quotes_given_table(found: pd.DataFrame) -> pd.DataFrame:
    """Counter quotes as the Quotes given list shows them."""
    return pd.DataFrame(
        {
            "Number": [quote_number(int(n)) for n in found["number"]],
            "Given": pd.to_datetime(found["created_at"]).dt.strftime("%d %b %Y %H:%M"),
            "By": found["given_by"],
            "Customer": found["customer"],
            "Reference": found["reference"],
            "Stone": [stone_title(stone) for stone in found["stone"]],
            "Price": found["price"].map(lambda v: f"${v:,.0f}"),
        }
    )


def priced_from(quote: Quote, version: int) -> str:
    """What priced the stone and when, in the counter's words (the model version last)."""
    inputs = (
        "the carat, the grades and the measurements"
        if quote.inputs_used is Inputs.ALL
        else "the carat and the grades"
    )
    return f"Priced from {inputs}, at {month_words(quote.market.period)} prices (model {version})."


def not_in_reasons(quote: Quote) -> list[str]:
    """The quote's warnings the confidence reasons beside it, and the carat question at the top,
    do not already say."""
    said = set(quote.reasons)
    if quote.carat_conflict is not None:  # the question says it, with both weights
        said |= {w for w in quote.warnings if "millimetres imply" in w or "were not usable" in w}
    return [warning for warning in quote.warnings if warning not in said]


def comparables_table(nearby: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "Carat": nearby["carat"].map(lambda c: f"{c:.2f}"),
            "Cut": nearby["cut"].astype(str),
            "Colour": nearby["color"].astype(str),
            "Clarity": nearby["clarity"].astype(str),
            "Price": nearby["price"].map(lambda v: f"${v:,.0f}"),
            "Appraised": nearby["appraised_on"].dt.strftime("%d %b %Y"),
        }
    )


def unpriced_first(priced: pd.DataFrame) -> pd.DataFrame:
    """The rows that could not be priced first, each part in file order: the screen's order and
    the download's, so the two read alike."""
    failed = priced["error"].astype(str) != ""
    return pd.concat([priced[failed], priced[~failed]])


def list_total(priced: pd.DataFrame) -> str:
    """'Total of the 3 estimates: $18,200 (range $16,000 – $21,000)': what a list comes to."""
    done = priced["price_estimate"].notna()
    count = int(done.sum())
    if not count:
        return "No stone could be priced."
    total, low, high = (
        float(priced.loc[done, c].sum()) for c in ("price_estimate", "price_low", "price_high")
    )
    each = "estimate" if count == 1 else f"{count:,} estimates"
    return (
        f"Total of the {each}: ${total:,.0f} (each stone's range added: ${low:,.0f} – ${high:,.0f})"
    )


def priced_list(priced: pd.DataFrame) -> pd.DataFrame:
    """A priced file for the screen: rows that could not be priced first, with their reason
    beside the inputs (where the eye is, not past the notes), dollars formatted, blanks for what
    is missing, in words."""
    frame = unpriced_first(priced)
    # The answer right after the grades (a phone shows the first five columns): the estimate,
    # then the reason a row could not be priced (its estimate is blank), then the range.
    answer = ["price_estimate", "error", "price_low", "price_high", "confidence"]
    if not (frame["error"].astype(str) != "").any():
        answer.remove("error")
        frame = frame.drop(columns="error")
    order = [c for c in frame.columns if c not in answer]
    after = 1 + max(
        (order.index(c) for c in ("carat", "cut", "color", "clarity") if c in order), default=-1
    )
    frame = frame[order[:after] + answer + order[after:]]
    for column in ("price_estimate", "price_low", "price_high"):
        frame[column] = [("" if pd.isna(v) else f"${v:,.0f}") for v in frame[column]]
    frame["carat_from_mm"] = [("" if pd.isna(v) else f"{v:.2f} ct") for v in frame["carat_from_mm"]]
    frame = frame.rename(
        columns={
            "price_estimate": "Estimate",
            "price_low": "Range from",
            "price_high": "Range to",
            "confidence": "Confidence",
            "carat_from_mm": "Millimetres imply",
            "warnings": "Notes",
            "error": "Could not be priced because",
        }
    )
    return frame.astype(object).where(frame.notna(), "").replace({None: "", np.nan: ""})


def unpriced_reasons(priced: pd.DataFrame, most: int = 20) -> list[str]:
    """The whole reason for each stone that could not be priced, numbered as in the file's
    list of stones (a table cell cuts long reasons short)."""
    failed = priced.index[priced["error"].astype(str) != ""]
    lines = [
        f"Stone {position + 1}: {literal(str(priced.at[label, 'error']))}"
        for position, label in zip(priced.index.get_indexer(failed), failed, strict=True)
    ][:most]
    if len(failed) > most:
        lines.append(f"…and {len(failed) - most:,} more (all are in the download).")
    return lines
