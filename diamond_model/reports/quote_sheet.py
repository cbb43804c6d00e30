"""The quote a customer takes home: the shop, a quote number and its validity, the customer, the
stone as a grading report describes it, the price and range in plain words, what sets the price
(the four grades), and the conditions in small print. Nothing internal: the model version and
market month appear only as a small reference line.

`CustomerQuote` is plain data (numbers and words, no model objects): it is what is printed and
what is stored with a counter quote, so a reprint years later is the page the customer was given.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from typing import Any

from fpdf import FPDF

from diamond_model.pricing.contributions import Explanation
from diamond_model.pricing.quote import Quote, conflict_question
from diamond_model.settings import Settings

# The PDF's built-in fonts speak Latin-1; these are the few characters our sentences use beyond it.
PLAIN = str.maketrans(
    {"–": "-", "—": "-", "…": "...", "’": "'", "“": '"', "”": '"', "≤": "<=", "≥": ">=", "×": "x"}
)
INDICATIVE = "Indicative: to be confirmed by our expert"
CONDITIONS = (
    "This quote estimates the value of the stone described above from its grades and "
    "measurements as stated; it is not a grading certificate and does not replace one. The price "
    "holds until the date above for that stone, subject to our expert examining it. The range "
    "shows where prices of stones like this one usually fall; it is not a promise to buy or sell "
    "at any price within it. Prices in US dollars."
)
# What each of the four grades does to the price, by how much it moves it (per cent).
SLIGHT, CLEAR = 3.0, 15.0
GRADE_WORDS = {"size": "Carat weight", "cut": "Cut", "color": "Colour", "clarity": "Clarity"}


def _latin1(text: str) -> str:
    return text.translate(PLAIN).encode("latin-1", "replace").decode("latin-1")


@dataclass(frozen=True)
class Shop:
    """The shop's details at the head of every quote (settings)."""

    name: str
    address: str = ""
    phone: str = ""
    vat: str = ""

    @classmethod
    def of(cls, settings: Settings) -> Shop:
        """The shop as the installation's settings name it."""
        return cls(
            settings.shop_name, settings.shop_address, settings.shop_phone, settings.shop_vat
        )


def quote_number(number: int) -> str:
    """How a counter quote's number is printed and typed: Q-00042."""
    return f"Q-{number:05d}"


def parse_quote_number(text: str) -> int | None:
    """The number in 'Q-00042', 'q42' or '42'; None when there is none."""
    digits = text.strip().upper().removeprefix("Q").lstrip("-– ").strip()
    return int(digits) if digits.isdigit() and len(digits) <= 9 else None


@dataclass(frozen=True)
class CustomerQuote:
    """Everything printed on a customer quote."""

    shop: Shop
    on: date
    valid_until: date
    stone: tuple[tuple[str, str], ...]  # (label, value) as a grading report lists them
    price: float
    low: float
    high: float
    why: tuple[tuple[str, str], ...]  # (grade, what it does to the price)
    indicative: bool
    provisional: str | None  # the unanswered carat question, if any
    reference: str  # the small reference line: model and market month
    number: int | None = None
    customer: str = ""
    customer_reference: str = ""
    notes: tuple[str, ...] = field(default=())

    def to_record(self) -> dict[str, Any]:
        """JSON-safe, for storing with a counter quote."""
        record = asdict(self)
        record["on"], record["valid_until"] = self.on.isoformat(), self.valid_until.isoformat()
        return record

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> CustomerQuote:
        return cls(
            shop=Shop(**record["shop"]),
            on=date.fromisoformat(record["on"]),
            valid_until=date.fromisoformat(record["valid_until"]),
            stone=tuple((str(a), str(b)) for a, b in record["stone"]),
            price=float(record["price"]),
            low=float(record["low"]),
            high=float(record["high"]),
            why=tuple((str(a), str(b)) for a, b in record["why"]),
            indicative=bool(record["indicative"]),
            provisional=record.get("provisional"),
            reference=str(record["reference"]),
            number=record.get("number"),
            customer=str(record.get("customer", "")),
            customer_reference=str(record.get("customer_reference", "")),
            notes=tuple(record.get("notes", ())),
        )


def report_lines(stone: dict[str, object]) -> tuple[tuple[str, str], ...]:
    """The stone as a grading report lists it: weight, colour, clarity, cut, then measurements
    ('6.40 - 6.45 x 3.95 mm': smallest - largest diameter x depth), depth and table."""
    lines = [
        ("Carat weight", f"{float(str(stone['carat'])):.2f} ct"),
        ("Colour grade", str(stone["color"])),
        ("Clarity grade", str(stone["clarity"])),
        ("Cut grade", str(stone["cut"])),
    ]
    x, y, z = (stone.get(axis) for axis in ("x", "y", "z"))
    if x is not None and y is not None and z is not None:
        small, large = sorted((float(str(x)), float(str(y))))
        lines.append(("Measurements", f"{small:.2f} - {large:.2f} x {float(str(z)):.2f} mm"))
    for name, label in (("depth", "Total depth"), ("table", "Table")):
        if stone.get(name) is not None:
            lines.append((label, f"{float(str(stone[name])):.1f} %"))
    return tuple(lines)


def price_factors(
    explanation: Explanation | None, stone: dict[str, object]
) -> tuple[tuple[str, str], ...]:
    """The four grades, the one moving the price most first, each with what it does in plain
    words (compared with an average stone of the appraisals)."""
    if explanation is None:
        return ()
    steps = {step.feature: step for step in explanation.steps if step.feature in GRADE_WORDS}
    shown = {
        "size": f"{float(str(stone['carat'])):.2f} ct",
        "cut": str(stone["cut"]),
        "color": str(stone["color"]),
        "clarity": str(stone["clarity"]),
    }
    order = sorted(steps.values(), key=lambda step: -abs(step.percent))
    out = []
    for rank, step in enumerate(order):
        size = abs(step.percent)
        if size < SLIGHT:
            words = "little effect on the price"
        else:
            direction = "raises" if step.percent > 0 else "lowers"
            words = f"{direction} the price" + (" slightly" if size < CLEAR else "")
        if rank == 0 and size >= SLIGHT:
            words = f"the largest factor: {words}"
        out.append((f"{GRADE_WORDS[step.feature]} {shown[step.feature]}", words))
    return tuple(out)


def customer_quote(
    shop: Shop,
    quote: Quote,
    stone: dict[str, object],
    model_version: int,
    on: date,
    valid_days: int,
    number: int | None = None,
    customer: str = "",
    customer_reference: str = "",
) -> CustomerQuote:
    """What the customer is handed for `quote`, in the customer's words."""
    provisional = None
    if quote.carat_conflict is not None:
        provisional = conflict_question(quote.carat, quote.carat_conflict)
    return CustomerQuote(
        shop=shop,
        on=on,
        valid_until=on + timedelta(days=valid_days),
        stone=report_lines(stone),
        price=quote.price,
        low=quote.low,
        high=quote.high,
        why=price_factors(quote.explanation, stone),
        indicative=quote.indicative,
        provisional=provisional,
        reference=f"Ref. model {model_version}, market {quote.market.period}",
        number=number,
        customer=customer.strip()[:120],
        customer_reference=customer_reference.strip()[:120],
    )


def letterhead(pdf: FPDF, shop: Shop, size: float, height: float) -> None:
    """The shop's name (`size` pt on lines `height` mm high), its address, phone and VAT number,
    and a rule, at the top of a page with 20 mm margins: every document the shop hands out."""
    pdf.set_y(20)
    pdf.set_font("Helvetica", style="B", size=size)
    pdf.multi_cell(0, height, _latin1(shop.name), new_x="LMARGIN", new_y="NEXT")
    contact = [part for part in (shop.address, shop.phone) if part]
    if shop.vat:
        contact.append(f"VAT {shop.vat}")
    if contact:
        pdf.set_font("Helvetica", size=9)
        pdf.multi_cell(0, 5, _latin1("   |   ".join(contact)), new_x="LMARGIN", new_y="NEXT")
    pdf.set_draw_color(160, 160, 160)
    pdf.line(20, pdf.get_y() + 3, pdf.w - 20, pdf.get_y() + 3)
    pdf.ln(8)


def quote_pdf(sheet: CustomerQuote) -> bytes:
    """One A4 page, as bytes."""
    pdf = FPDF(format="A4")
    title = "Diamond quote" + (f" {quote_number(sheet.number)}" if sheet.number else "")
    pdf.set_title(_latin1(title))
    pdf.set_author(_latin1(sheet.shop.name))
    pdf.set_auto_page_break(False)
    pdf.add_page()
    pdf.set_margins(20, 20, 20)
    width = pdf.w - 40

    def text(words: str, size: float = 11, style: str = "", height: float = 6, **kw: Any) -> None:
        pdf.set_font("Helvetica", style=style, size=size)
        pdf.multi_cell(0, height, _latin1(words), new_x="LMARGIN", new_y="NEXT", **kw)

    letterhead(pdf, sheet.shop, 20, 10)

    # The quote: number, dates, customer.
    text(title, 16, "B", 8)
    text(f"Date: {sheet.on:%d %B %Y}      Valid until: {sheet.valid_until:%d %B %Y}", 10, "", 6)
    if sheet.customer or sheet.customer_reference:
        who = "   ".join(
            part
            for part in (
                f"For: {sheet.customer}" if sheet.customer else "",
                f"Your reference: {sheet.customer_reference}" if sheet.customer_reference else "",
            )
            if part
        )
        text(who, 10, "", 6)
    pdf.ln(4)

    if sheet.provisional or sheet.indicative:
        pdf.set_fill_color(255, 243, 205)
        banner = sheet.provisional or f"{INDICATIVE}."
        if sheet.provisional:
            banner = f"Provisional, not valid until the weight is checked. {banner}"
        text(banner, 11, "B", 7, fill=True)
        pdf.ln(3)

    # The stone.
    text("The stone", 12, "B", 8)
    for label, value in sheet.stone:
        pdf.set_font("Helvetica", size=11)
        pdf.cell(55, 7, _latin1(label))
        pdf.set_font("Helvetica", style="B", size=11)
        pdf.cell(0, 7, _latin1(value), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(5)

    # The price.
    estimate = "Indicative price" if sheet.indicative or sheet.provisional else "Our price"
    text(f"{estimate}: ${sheet.price:,.0f}", 22, "B", 12)
    if sheet.provisional:
        text("No range is given until the weight is checked.", 11, "", 6)
    elif sheet.indicative:
        text(
            "A first estimate only: until our expert has examined the stone, its price could lie "
            f"anywhere from ${sheet.low:,.0f} to ${sheet.high:,.0f}.",
            11,
            "",
            6,
        )
    else:
        text(
            f"Stones like this one usually sell between ${sheet.low:,.0f} and ${sheet.high:,.0f}.",
            11,
            "",
            6,
        )
    pdf.ln(5)

    if sheet.why:
        text("What sets this price", 12, "B", 8)
        for grade, words in sheet.why:
            pdf.set_font("Helvetica", size=11)
            pdf.cell(55, 7, _latin1(grade))
            pdf.cell(0, 7, _latin1(words[0].upper() + words[1:]), new_x="LMARGIN", new_y="NEXT")
        text("Compared with an average stone of the same kind.", 8, "I", 5)
    for note in sheet.notes:
        text(note, 10, "", 5)

    # Signature and the small print at the foot of the page.
    pdf.set_y(pdf.h - 78)
    pdf.set_font("Helvetica", size=10)
    pdf.cell(width / 2, 6, _latin1("For the shop: ______________________"))
    pdf.cell(width / 2, 6, _latin1("Customer: ______________________"), new_x="LMARGIN")
    pdf.ln(14)
    text("Conditions", 9, "B", 5)
    text(CONDITIONS, 8, "", 4)
    pdf.ln(3)
    text(sheet.reference, 7, "", 4)
    return bytes(pdf.output())
