"""A client's monthly statement as one printable page: the shop, the client, the month, the stones
priced each day, the price per 1,000 stones and the amount due (`serving.business.Statement`)."""

from __future__ import annotations

from fpdf import FPDF

from diamond_model.reports.quote_sheet import Shop, _latin1, letterhead
from diamond_model.serving.business import Statement, charge

ROWS_PER_PAGE = 31  # a month's days fit one A4 page


def statement_pdf(sheet: Statement, shop: Shop) -> bytes:
    """One A4 page (a day per row), as bytes."""
    pdf = FPDF(format="A4")
    title = f"Statement for {sheet.client}, {sheet.month}"
    pdf.set_title(_latin1(title))
    pdf.set_author(_latin1(shop.name))
    pdf.set_auto_page_break(False)
    pdf.add_page()
    pdf.set_margins(20, 20, 20)
    width = pdf.w - 40

    def line(words: str, size: float = 10, style: str = "", height: float = 6) -> None:
        pdf.set_font("Helvetica", style=style, size=size)
        pdf.multi_cell(0, height, _latin1(words), new_x="LMARGIN", new_y="NEXT")

    letterhead(pdf, shop, 18, 9)
    line(title, 15, "B", 8)
    line(
        f"Diamond pricing through our API, {sheet.month} (UTC days). Drawn up on "
        f"{sheet.drawn_on:%d %B %Y}.",
    )
    pdf.ln(4)

    columns = (("Date", 45), ("Requests", 35), ("Stones priced", 40), ("Amount", width - 120))
    pdf.set_font("Helvetica", style="B", size=10)
    for label, size in columns:
        pdf.cell(size, 7, label, border="B", align="L" if label == "Date" else "R")
    pdf.ln(7)
    pdf.set_font("Helvetica", size=10)
    for day in sheet.lines[:ROWS_PER_PAGE]:
        cells = (
            f"{day.day:%a %d %b %Y}",
            f"{day.requests:,}",
            f"{day.stones:,}",
            f"${charge(day.stones, sheet.price_per_1000):,.2f}",
        )
        for (label, size), value in zip(columns, cells, strict=True):
            pdf.cell(size, 6, value, align="L" if label == "Date" else "R")
        pdf.ln(6)
    if not sheet.lines:
        line("No use of the API this month.", 10, "I")
    pdf.set_font("Helvetica", style="B", size=10)
    totals = ("Total", f"{sheet.requests:,}", f"{sheet.stones:,}", f"${sheet.amount:,.2f}")
    for (label, size), value in zip(columns, totals, strict=True):
        pdf.cell(size, 8, value, border="T", align="L" if label == "Date" else "R")
    pdf.ln(12)
    line(
        f"{sheet.stones:,} stones at ${sheet.price_per_1000:,.2f} per 1,000 stones: "
        f"${sheet.amount:,.2f} due.",
        12,
        "B",
        7,
    )
    line(
        "Requests that failed or were refused for a limit are not charged; a stone is charged "
        "once however many times the same request was retried with its Idempotency-Key.",
        8,
        "",
        4,
    )
    return bytes(pdf.output())
