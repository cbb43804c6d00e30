"""Price a stone: estimate, likely range and why; what-if grades; comparables; price a list."""

import streamlit as st

from app.dashboard import money, services
from app.services import NoModelError
from diamond_model import plots
from diamond_model.analysis import carat_curve, what_if
from diamond_model.comparables import closest
from diamond_model.quote import InvalidStoneError, neutralise_formulas, price_table, quote_stone
from diamond_model.schema import GRADE_HELP, GRADES, RANGES
from diamond_model.validation import UnusableFileError

st.set_page_config(page_title="Price a stone", page_icon="💰", layout="wide")
st.title("Price a stone")

svc = services()
try:
    version, model = svc.champion()
except NoModelError as error:
    st.warning(str(error))
    st.stop()
level = svc.settings.interval_level
low_ct, high_ct = model.domain.ranges["carat"]

left, right = st.columns([1, 2], gap="large")
with left:
    carat = st.number_input(
        "Carat (ct)",
        min_value=0.01,
        max_value=RANGES["carat"].high,
        value=1.0,
        step=0.01,
        format="%.2f",
        help=f"Weight; 1 ct = 0.2 g. The model has seen {low_ct:g}–{high_ct:g} ct.",
    )
    grades = {}
    for grade, default in (("cut", "Ideal"), ("color", "G"), ("clarity", "VS2")):
        scale = GRADES[grade]
        grades[grade] = st.selectbox(
            f"{grade.capitalize()} (worst → best)",
            scale,
            index=scale.index(default),
            format_func=lambda g, c=grade: f"{g} — {GRADE_HELP[c][g]}",
        )
    with st.expander("Measurements (optional: they narrow the range)", expanded=False):
        st.caption("Leave empty when not measured; the price then comes from the 4Cs alone.")
        measured = {
            "depth": st.number_input(
                "Depth (%)", 40.0, 80.0, value=None, step=0.1, placeholder="not measured"
            ),
            "table": st.number_input(
                "Table (%)", 40.0, 100.0, value=None, step=0.5, placeholder="not measured"
            ),
            "x": st.number_input(
                "Length x (mm)", 0.01, 30.0, value=None, step=0.01, placeholder="not measured"
            ),
            "y": st.number_input(
                "Width y (mm)", 0.01, 30.0, value=None, step=0.01, placeholder="not measured"
            ),
            "z": st.number_input(
                "Depth z (mm)", 0.01, 30.0, value=None, step=0.01, placeholder="not measured"
            ),
        }

stone = {"carat": carat, **grades, **measured}
if not low_ct <= carat <= high_ct:
    st.warning(
        f"The model has seen stones from {low_ct:g} to {high_ct:g} carats; "
        "this estimate is an extrapolation."
    )
try:
    quote = quote_stone(model, stone, level)
except InvalidStoneError as error:
    for field, _, reason in error.problems:
        st.error(f"**{field or 'stone'}**: {reason}")
    st.stop()

with right:
    a, b = st.columns(2)
    a.metric("Estimated price", money(quote.price))
    b.metric(
        f"Likely range ({100 * level:.0f}% of real prices fall inside)",
        f"{money(quote.low)} – {money(quote.high)}",
    )
    st.caption(f"Model v{version}, priced from {quote.model}.")
    for warning in quote.warnings:
        if not warning.startswith("Carat") or low_ct <= carat <= high_ct:
            st.info(warning[0].upper() + warning[1:])
    st.plotly_chart(plots.waterfall(quote.explanation), width="stretch")
    st.markdown("\n".join(f"- {sentence}" for sentence in quote.explanation.sentences))

st.subheader("What if the grades were different?")
changes = what_if(model, stone, level)
st.dataframe(
    changes.assign(
        price=changes["price"].map(money),
        difference=changes["difference"].map(lambda d: f"{'+' if d >= 0 else '−'}${abs(d):,.0f}"),
        percent=changes["percent"].map(lambda p: f"{p:+.1f}%"),
    ),
    hide_index=True,
    width="stretch",
)
st.plotly_chart(plots.carat_curve(carat_curve(model, stone, level), carat), width="stretch")

st.subheader("Comparable stones the expert appraised")
nearby = closest(svc.store.appraisals_near(carat), stone, 8)
if nearby.empty:
    st.info("No stored appraisal is within ±25% carat and one grade of this stone.")
else:
    st.dataframe(
        nearby[
            ["carat", "cut", "color", "clarity", "price", "uploaded_at", "batch_id", "line"]
        ].rename(columns={"uploaded_at": "appraised (uploaded)", "batch_id": "batch"}),
        hide_index=True,
        width="stretch",
        column_config={"price": st.column_config.NumberColumn("price", format="$%d")},
    )

st.subheader("Price a list of stones")
st.caption(
    "A CSV with at least carat, cut, color, clarity (measurements optional). "
    "You get the same columns as the command line's `predict`."
)
uploaded = st.file_uploader("CSV of stones to price", type=["csv", "txt"], key="price_list")
if uploaded is not None:
    try:
        priced = price_table(model, uploaded.getvalue(), level)
    except UnusableFileError as error:
        st.error(str(error))
    else:
        failed = int((priced["error"] != "").sum())
        st.write(
            f"Priced {len(priced) - failed:,} of {len(priced):,} rows"
            + (f"; {failed} could not be priced (see the error column)." if failed else ".")
        )
        st.dataframe(priced, hide_index=True, width="stretch")
        st.download_button(
            "Download the priced list (CSV)",
            neutralise_formulas(priced).to_csv(index=False, float_format="%.2f"),
            file_name=f"priced-{uploaded.name}",
            mime="text/csv",
        )
