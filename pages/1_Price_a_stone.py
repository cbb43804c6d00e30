"""Price a stone: one stone (price, range, confidence, why, what if, the trade's grid,
comparables, a printable quote) or a list of stones."""

import streamlit as st

from app import counter_views
from app.dashboard import (
    chart,
    chosen_sheet,
    give_quote,
    quotes_given,
    reprint_of,
    services,
    signed_in_name,
    stone_page_of,
    through_navigation,
)
from app.services import NoModelError
from diamond_model.data.measurements import parse_report
from diamond_model.data.reading import UnusableFileError, neutralise_formulas
from diamond_model.data.schema import CLARITIES, COLORS, CUTS, GRADE_HELP
from diamond_model.enums import Confidence
from diamond_model.pricing.quote import InvalidStoneError, conflict_question, read_and_price
from diamond_model.reports import figures
from diamond_model.reports.quote_sheet import INDICATIVE, parse_quote_number, quote_number
from diamond_model.reports.stone_page import StonePage
from diamond_model.words import money, sentence

through_navigation()
st.set_page_config(page_title="Price a stone", page_icon="💰", layout="wide")
st.title("Price a stone")

svc = services()
try:
    champion = svc.champion()
except NoModelError:
    st.warning(
        "No price can be given yet: no model has been trained. The expert can load the "
        "appraisals and train one on the Home page."
    )
    st.stop()
version, model = champion
level = svc.settings.interval_level
MEASURED = ("mm_x", "mm_y", "mm_z", "depth", "table")
BADGES = {Confidence.HIGH: "green", Confidence.MEDIUM: "orange", Confidence.LOW: "red"}


def read_report() -> None:
    """Fill x, y and z from measurements pasted as a grading report writes them."""
    text = st.session_state.get("report_mm", "")
    if not text.strip():
        return
    try:
        x, y, z = parse_report(text)
    except ValueError as error:
        st.session_state["report_error"] = str(error)
        return
    st.session_state.pop("report_error", None)
    st.session_state.update(mm_x=x, mm_y=y, mm_z=z)


def clear_measurements() -> None:
    for key in MEASURED:
        st.session_state[key] = None
    st.session_state["report_mm"] = ""


def use_carat(carat: float) -> None:
    st.session_state["carat"] = carat


def new_stone() -> None:
    """Back to an empty form for the next customer."""
    clear_measurements()
    for key in ("carat", "cut", "color", "clarity", "q_customer", "q_reference"):
        st.session_state.pop(key, None)
    st.session_state.pop("given", None)


one, many, given = st.tabs(["One stone", "A list of stones", "Quotes given"])


def customer_quote_form(page: StonePage) -> None:
    """Make a numbered customer quote (kept, found again under Quotes given) and download it."""
    st.subheader("Customer quote")
    if page.quote.provisional:
        st.info("Answer the question at the top (which weight is right) to make the quote.")
        return
    stone_key = repr(sorted(page.stone.items()))
    with st.form("give_quote", border=False):
        customer = st.text_input("Customer name (optional)", key="q_customer", max_chars=120)
        reference = st.text_input("Customer reference (optional)", key="q_reference", max_chars=120)
        given_by = st.text_input("Given by", value=signed_in_name(), key="q_by", max_chars=120)
        made = st.form_submit_button("Make the quote (numbered and kept)")
    if made:
        number, pdf = give_quote(svc, page, given_by, customer, reference)
        st.session_state["given"] = (stone_key, number, pdf)
    done = st.session_state.get("given")
    if done and done[0] == stone_key:
        _, number, pdf = done
        st.success(f"Quote {quote_number(number)} is kept: find it again under Quotes given.")
        st.download_button(
            f"Download quote {quote_number(number)} (PDF)",
            pdf,
            f"quote-{quote_number(number)}.pdf",
            "application/pdf",
            key="pdf",
        )


DRAWN = "_price_page_drawn"


@st.fragment(run_every=0.3)
def draw_the_rest_shortly() -> None:
    """Empty on its first pass; on the next, a whole-page run that draws everything."""
    if st.session_state.get("_price_page_ticked"):
        st.session_state[DRAWN] = True
        st.rerun(scope="app")
    st.session_state["_price_page_ticked"] = True


def one_stone() -> None:
    """The counter's main view; returns early (no price shown) for an invalid stone."""
    # Filled once the stone is priced: the answer sits above the inputs, so a phone shows the
    # price and its range on the first screen.
    answer = st.container()
    left, right = st.columns([1, 2], gap="large")
    with left:
        st.session_state.setdefault("carat", 1.0)  # the buttons below set it; no value= then
        carat = st.number_input(
            "Carat (ct)",
            step=0.01,
            format="%.2f",
            key="carat",
            help="The weighed carat; 1 ct = 0.2 g.",
        )
        cut = st.selectbox(
            "Cut (best first)",
            CUTS[::-1],
            key="cut",
            format_func=lambda g: f"{g} — {GRADE_HELP['cut'][g]}",
            help="The five cut grades of these appraisals (Ideal, Premium, Very Good, Good, Fair). "
            "From a GIA, IGI or HRD report: Excellent is Ideal here, Very Good and Good as "
            "written; Poor is below these appraisals (ask the expert).",
        )
        color = st.selectbox(
            "Colour (D best → J)",
            COLORS[::-1],
            index=COLORS[::-1].index("G"),
            help="D to J, as in these appraisals. K and below are real grades beyond them: "
            "the model does not price them; ask the expert.",
            key="color",
            format_func=lambda g: f"{g} — {GRADE_HELP['color'][g]}",
        )
        clarity = st.selectbox(
            "Clarity (IF best → I1)",
            CLARITIES[::-1],
            index=CLARITIES[::-1].index("VS2"),
            key="clarity",
            format_func=lambda g: f"{g} — {GRADE_HELP['clarity'][g]}",
        )
        with st.expander("Measurements (optional)", expanded=False):
            st.text_input(
                "Paste them as the report writes them",
                key="report_mm",
                placeholder="6.10 – 6.15 × 3.80 mm",
                on_change=read_report,
            )
            if st.session_state.get("report_error"):
                st.error(st.session_state["report_error"])
            a, b, c = st.columns(3)
            x = a.number_input("Length x (mm)", value=None, step=0.01, key="mm_x")
            y = b.number_input("Width y (mm)", value=None, step=0.01, key="mm_y")
            z = c.number_input("Total depth z (mm)", value=None, step=0.01, key="mm_z")
            d, t = st.columns(2)
            depth = d.number_input(
                "Depth %",
                value=None,
                step=0.1,
                key="depth",
                help="Total depth as a share of the width; computed from x, y, z when empty.",
            )
            table = t.number_input("Table %", value=None, step=0.5, key="table")
            st.button("Clear the measurements", key="clear_mm", on_click=clear_measurements)
        st.button("New stone", key="new_stone", on_click=new_stone)

    stone = {
        "carat": carat,
        "cut": cut,
        "color": color,
        "clarity": clarity,
        "depth": depth,
        "table": table,
        "x": x,
        "y": y,
        "z": z,
    }
    with right:
        try:
            page = stone_page_of(svc, champion, stone)
        except InvalidStoneError as error:
            answer.error(
                "No price: " + "; ".join(sentence(reason) for _, _, reason in error.problems) + "."
            )
            return
    quote = page.quote
    with answer:
        if quote.carat_conflict is not None:
            # One question, wherever the typing started: which weight is right?
            st.warning(conflict_question(carat, quote.carat_conflict))
            use, keep = st.columns(2)
            use.button(
                f"Use {quote.carat_conflict:.2f} ct",
                key="use_implied",
                on_click=use_carat,
                args=(quote.carat_conflict,),
                type="primary",
            )
            keep.button(
                f"Keep {carat:g} ct, ignore the millimetres",
                key="keep_carat",
                on_click=clear_measurements,
            )
        if quote.indicative:
            why = (
                "this stone is outside what our appraisals cover: the price is an "
                "extrapolation, and the range is wider for it"
                if quote.extrapolated
                else "the confidence is low (the reasons are beside the price)"
            )
            st.warning(f"{INDICATIVE} before quoting: {why}.")
        name = "Estimated price"
        if quote.provisional:
            name = "Provisional price"
        elif quote.indicative:
            name = "Indicative price"
        a, b, c = st.columns([2, 3, 2])
        a.metric(name, money(quote.price))
        b.metric(
            f"Likely range ({100 * level:.0f}% of real prices)",
            f"{money(quote.low)} – {money(quote.high)}",
        )
        c.metric("Price per carat", money(quote.price_per_carat))
        st.badge(f"Confidence: {quote.confidence}", color=BADGES[quote.confidence])
        # With the price, not beside the inputs: a phone stacks the columns, and warnings there
        # came after every input.
        for reason in quote.reasons:
            st.markdown(f"- {sentence(reason)}")
        for warning in counter_views.not_in_reasons(quote):
            st.info(sentence(warning))
    with right:
        st.caption(counter_views.priced_from(quote, version))
        if not st.session_state.get(DRAWN):
            # A session's first view sends the price, its range and the reasons alone; the
            # charts and tables follow a moment later, once the browser has shown the price
            # (its chart library is a 4.7 MB script it compiles on first use, which held the
            # price back). Measured in `python -m benchmarks.bench_dashboard first-price`.
            draw_the_rest_shortly()
            return
        chart(figures.waterfall(quote.explanation), key="waterfall")
        st.markdown("\n".join(f"- {s}" for s in quote.explanation.sentences))
        customer_quote_form(page)

    st.subheader("What if the grades were different?")
    st.dataframe(
        counter_views.what_if_table(page.what_if), hide_index=True, width="stretch", key="what_if"
    )
    st.subheader(f"Price per carat for a {carat:.2f} ct {cut} stone, by colour and clarity")
    st.dataframe(
        counter_views.highlighted_grid(page.grid, color, clarity),
        width="stretch",
        key="grid",
        column_config={c: st.column_config.Column(width=38) for c in page.grid.columns},
    )
    own = quote.price_per_carat / counter_views.GRID_UNIT
    st.caption(
        "In hundreds of dollars per carat, as trade price lists write them: this stone's cell, "
        f"highlighted, reads {own:,.0f} for its {money(quote.price_per_carat)} per carat. The "
        "model's prices for this weight, cut and measurements."
    )
    chart(figures.carat_curve(page.curve, carat), key="curve")
    st.subheader("Comparable stones our expert appraised")
    if page.comparables.empty:
        st.info("No stored appraisal is within 25% of the weight and one grade of this stone.")
    else:
        st.dataframe(
            counter_views.comparables_table(page.comparables),
            hide_index=True,
            width="stretch",
            key="comparables",
        )


with one:
    one_stone()

with many:
    st.write(
        "Upload a CSV file or a workbook (.xlsx, .ods) with the columns carat, cut, color and "
        "clarity (measurements optional; Italian names such as carati, taglio, colore, purezza "
        "are read too). You get the same list back with an estimate, a range, a confidence level "
        "and notes for each stone; stones that cannot be priced come first, with the reason."
    )
    # No type filter: a file that is not a table is answered in words, not by a red icon.
    uploaded = st.file_uploader("File of stones to price", key="price_list")
    if uploaded is not None:
        data = uploaded.getvalue()
        sheet = chosen_sheet(uploaded.name, data, key="price_list_sheet")
        try:
            priced, read_as = read_and_price(model, data, level, sheet)
        except UnusableFileError as error:
            st.error(str(error))
        else:
            for note in read_as:
                st.info(note)
            failed = int((priced["error"] != "").sum())
            st.write(
                f"Priced {len(priced) - failed:,} of {len(priced):,} stones"
                + (f"; {failed} could not be priced (listed first)." if failed else ".")
            )
            st.dataframe(
                counter_views.priced_list(priced),
                hide_index=True,
                width="stretch",
                key="priced",
                # narrow enough that a phone still shows the estimate beside the grades
                column_config={"Could not be priced because": st.column_config.Column(width=180)},
            )
            for line in counter_views.unpriced_reasons(priced):
                st.markdown(f"- {sentence(line)}")
            st.markdown(f"**{counter_views.list_total(priced)}**")
            st.download_button(
                "Download the priced list (CSV)",
                neutralise_formulas(counter_views.unpriced_first(priced)).to_csv(
                    index=False, float_format="%.2f"
                ),
                file_name=f"priced-{uploaded.name}",
                mime="text/csv",
                key="priced_csv",
            )

with given:
    st.write("Quotes handed to customers, newest first. Search by number, customer or dates.")
    a, b, c, d = st.columns([2, 3, 2, 2])
    number_text = a.text_input("Quote number", key="find_number", placeholder="Q-00042")
    customer = b.text_input("Customer or reference", key="find_customer")
    since = c.date_input("From", value=None, key="find_since")
    until = d.date_input("To", value=None, key="find_until")
    number = parse_quote_number(number_text) if number_text.strip() else None
    if number_text.strip() and number is None:
        st.error(f"'{number_text[:40]}' is not a quote number: type it as printed, e.g. Q-00042.")
    else:
        found = quotes_given(svc, number, customer, since, until)
        if found.empty:
            st.info("No quote given matches." if number_text or customer else "No quote yet.")
        else:
            st.dataframe(
                counter_views.quotes_given_table(found),
                hide_index=True,
                width="stretch",
                key="given_list",
            )
            chosen = st.selectbox(
                "Reprint", found["number"].tolist(), format_func=quote_number, key="reprint"
            )
            number = int(chosen)
            st.download_button(
                f"Download quote {quote_number(number)} again (PDF)",
                reprint_of(svc, number),
                f"quote-{quote_number(number)}.pdf",
                "application/pdf",
                key="reprint_pdf",
            )
