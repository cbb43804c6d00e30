"""The owner's month on one printable page: the three answers as they stood at the month's end
(or now, for the current month) and what the API clients brought that month.

    python -m diamond_model report --month 2026-11 -o report-2026-11.pdf
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from fpdf import FPDF

from diamond_model.learning.registry import Registry
from diamond_model.reports.owner import Answer, ThreeAnswers, three_answers
from diamond_model.reports.quote_sheet import Shop, _latin1
from diamond_model.serving.business import income_by_month, month_bounds, usage_by
from diamond_model.serving.keys import KeyStore
from diamond_model.storage.store import Store
from diamond_model.storage.tables import utcnow


@dataclass(frozen=True)
class ClientMonth:
    client: str
    stones: int
    price_per_1000: float
    income: float


@dataclass(frozen=True)
class MonthlyReport:
    month: str  # 2026-11
    as_of: datetime
    answers: ThreeAnswers | None
    clients: tuple[ClientMonth, ...]
    refused: int

    @property
    def income(self) -> float:
        return round(sum(c.income for c in self.clients), 2)

    @property
    def stones(self) -> int:
        return sum(c.stones for c in self.clients)

    @property
    def title(self) -> str:
        return f"{datetime.strptime(self.month, '%Y-%m'):%B %Y}"


def monthly_report(
    registry: Registry,
    store: Store,
    level: float,
    default_price: float,
    month: str,
    now: datetime | None = None,
) -> MonthlyReport:
    """The report of `month` (2026-11): as of its last moment, or `now` if that is earlier."""
    start, end = month_bounds(month)
    as_of = min(end - timedelta(microseconds=1), now or utcnow())
    keys = KeyStore(store)
    income = income_by_month(keys, default_price)
    income = income.loc[(income["month"] == f"{start:%Y-%m}") & (income["stones"] > 0)]
    usage = usage_by(keys, "month")
    refused = int(usage.loc[usage["month"] == f"{start:%Y-%m}", "refused"].sum())
    return MonthlyReport(
        month=f"{start:%Y-%m}",
        as_of=as_of,
        answers=three_answers(registry, store, level, as_of) if as_of >= start else None,
        clients=tuple(
            ClientMonth(str(c), int(s), float(p), float(i))
            for c, s, p, i in income[["client", "stones", "price_per_1000", "income"]].itertuples(
                index=False
            )
        ),
        refused=refused,
    )


def report_pdf(report: MonthlyReport, shop: Shop) -> bytes:
    """One A4 page, as bytes."""
    pdf = FPDF(format="A4")
    pdf.set_title(_latin1(f"{shop.name}: {report.title}"))
    pdf.set_author(_latin1(shop.name))
    pdf.set_auto_page_break(False)
    pdf.add_page()
    pdf.set_margins(20, 18, 20)
    width = pdf.w - 40

    def line(words: str, size: float = 10, style: str = "", height: float = 5.5) -> None:
        pdf.set_font("Helvetica", style=style, size=size)
        pdf.multi_cell(0, height, _latin1(words), new_x="LMARGIN", new_y="NEXT")

    pdf.set_y(18)
    line(shop.name, 16, "B", 8)
    line(f"The month in brief: {report.title}", 13, "B", 7)
    line(f"As of {report.as_of:%d %B %Y, %H:%M} UTC.", 9, "", 5)
    pdf.set_draw_color(160, 160, 160)
    pdf.line(20, pdf.get_y() + 2, 20 + width, pdf.get_y() + 2)
    pdf.ln(5)

    def answer(item: Answer) -> None:
        line(f"{item.question}  {item.verdict}", 12, "B", 7)
        for sentence in item.sentences:
            line(f"- {sentence}", 10, "", 5.2)
        pdf.ln(2.5)

    if report.answers is None:
        line("No model was serving in this month.", 11, "I", 7)
    else:
        line(f"The model serving: version {report.answers.version}.", 9, "", 5)
        pdf.ln(1)
        for item in (report.answers.good, report.answers.better, report.answers.changed):
            answer(item)

    line("What the API clients brought", 12, "B", 7)
    if not report.clients:
        line("No stones were priced for clients this month.", 10, "", 5.5)
    else:
        columns = (
            ("Client", 70),
            ("Stones priced", 35),
            ("Per 1,000", 30),
            ("Income", width - 135),
        )
        pdf.set_font("Helvetica", style="B", size=10)
        for label, size in columns:
            pdf.cell(size, 6.5, label, border="B", align="L" if label == "Client" else "R")
        pdf.ln(6.5)
        pdf.set_font("Helvetica", size=10)
        for client in report.clients[:12]:
            cells = (
                client.client,
                f"{client.stones:,}",
                f"${client.price_per_1000:,.2f}",
                f"${client.income:,.2f}",
            )
            for (label, size), value in zip(columns, cells, strict=True):
                pdf.cell(size, 6, _latin1(value), align="L" if label == "Client" else "R")
            pdf.ln(6)
        pdf.set_font("Helvetica", style="B", size=10)
        totals = ("Total", f"{report.stones:,}", "", f"${report.income:,.2f}")
        for (label, size), value in zip(columns, totals, strict=True):
            pdf.cell(size, 7, value, border="T", align="L" if label == "Client" else "R")
        pdf.ln(9)
        if len(report.clients) > 12:
            line(f"and {len(report.clients) - 12} more clients in the total.", 9, "I", 5)
    line(f"{report.refused:,} requests were refused for a limit (not charged).", 9, "", 5)
    pdf.set_y(pdf.h - 22)
    line(
        "Average error: the mean miss against the expert's price on the reference appraisals, "
        "each version judged by its recipe fitted without them. Beyond noise: larger than twice "
        "the standard error of the stone-by-stone difference. Days and months in UTC.",
        7.5,
        "",
        3.8,
    )
    return bytes(pdf.output())
