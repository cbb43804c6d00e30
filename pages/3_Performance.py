"""Performance: is the model good, and is it getting better? Then how it prices, then the
analyst's view of the data."""

import streamlit as st

from app import views
from app.dashboard import (
    answers,
    appraisals,
    chart,
    holdout,
    learning,
    relies_on,
    services,
    through_navigation,
)
from diamond_model.reports import figures, model_figures
from diamond_model.reports.analysis import (
    coverage_by_band,
    grade_effect,
    signed_error_by_predicted_band,
)
from diamond_model.reports.owner import (
    coverage_title,
    events_in_words,
    history_events,
    market_title,
    ranges_sentence,
)

through_navigation()
st.set_page_config(page_title="Performance", page_icon="📈", layout="wide")
st.title("Performance")
svc = services()
champion = svc.cache.get()
if champion is None:
    st.info("No model has been trained yet, so there is nothing to measure.")
    st.stop()
version, model = champion
level = svc.settings.interval_level
infos = svc.registry.versions()
current = next(v for v in infos if v.version == version)

st.header("Is the model good, and is it getting better?")
reference = (current.reference_metrics or {}).get("mape")
figures_now, where = views.accuracy(current)
a, b, c = st.columns(3)
a.metric("Typical error (median)", f"{figures_now['median_ape']:.1f}%")
b.metric("Average error in dollars", f"${figures_now['mae']:,.0f}")
c.metric(f"Real prices inside the {100 * level:.0f}% range", f"{figures_now['coverage']:.0f}%")
st.caption(f"{where}.")
events = svc.registry.champion_events()
three = answers(svc, version)
verdict = three.better.verdict if three is not None else "Average error by version"
chart(
    model_figures.history(
        views.history_frame(infos, history_events(events)),
        f"{verdict}: average error of every version on the same appraisals",
    ),
    key="history",
)
if three is not None:
    for sentence in three.better.sentences:
        st.markdown(f"- {sentence}")
with st.expander("What happened to the serving model"):
    for line in events_in_words(events):
        st.markdown(f"- {line}")
st.caption(
    "Every version is measured on the same reference appraisals (held out from the first "
    "batch), by its recipe fitted without them, each priced at its own month's market level, "
    "so the bars compare like with like; the model that serves learned from them too, so its "
    f"errors are a little smaller than shown. v{version} serves now"
    + (f", {reference:.2f}% average error on that set." if reference else ".")
)
batches = svc.store.batches()
live = batches[batches["live"].notna()].tail(5)
if len(live):
    st.subheader("The latest batches, as the serving model read them before training")
    st.dataframe(views.batches(live), hide_index=True, width="stretch", key="live")
    st.caption(
        "Each upload is priced by the model that was serving at the time, before any training "
        "on it: a market move or a drift shows here first."
    )
if len(model.market.months) > 1:
    chart(
        model_figures.market_index(model.market.frame(), market_title(model.market)),
        key="market",
    )
    st.caption(
        f"Monthly level of prices against the average appraisal, with its 90% band; quotes use "
        f"{model.market.latest_label}."
    )

st.header("How it prices")
predictions = holdout(svc, version)
chart(model_figures.predicted_vs_actual(predictions), key="scatter")
left, right = st.columns(2)
with left:
    chart(model_figures.signed_error(signed_error_by_predicted_band(predictions)), key="lean")
    st.caption(
        "Whether the model leans high or low at each price: the middle error of the stones it "
        "quoted in each band (grouped by its own quote; grouped by the expert's price, any model "
        "would seem to overprice cheap stones and underprice dear ones)."
    )
with right:
    chart(model_figures.reliance(relies_on(svc, version)), key="reliance")
    st.caption(
        "What moves a price most: how far each step of the waterfall moves a stone's price from "
        "the typical stone's, on average, in per cent (size includes the weight's own curve; "
        "over 100 % means it often doubles a price or more)."
    )
st.subheader("Are the ranges honest?")
tables = {
    what: coverage_by_band(predictions, column)
    for what, column in (("price band", "price_band"), ("carat band", "carat_band"), ("cut", "cut"))
}
st.markdown(ranges_sentence(tables, level))
group = st.radio(
    "Group by", ["price band", "carat band", "cut"], horizontal=True, key="coverage_group"
)
column = {"price band": "price_band", "carat band": "carat_band", "cut": "cut"}[group]
chart(
    model_figures.coverage(
        coverage_by_band(predictions, column),
        column,
        level,
        coverage_title(coverage_by_band(predictions, column), group),
    ),
    key="coverage",
)
st.caption(
    f"The share of appraisals the model never saw whose price fell inside the {100 * level:.0f}% "
    "range quoted for them; each bar should sit near the dashed line."
)
grade = st.radio("Errors by", ["cut", "color", "clarity"], horizontal=True, key="errors_grade")
chart(model_figures.errors_by_grade(predictions, grade), key="errors")
st.caption(
    "Each box holds the middle half of the misses for that grade, its line the middle miss; the "
    "whiskers reach the usual extremes. Boxes centred on zero: no grade is priced high or low."
)

st.header("Analyst")
if st.toggle("Show the data exploration and the learning curve", key="analyst"):
    data = appraisals(svc)
    st.caption(f"{len(data):,} stored appraisals in use.")
    chart(model_figures.learning_curve(learning(svc)), key="learning")
    st.caption(
        "The learning curve: the error on stones it never saw when trained on more and more of "
        "these appraisals; still falling at the right means more appraisals would help."
    )
    feature = st.selectbox(
        "Distribution of",
        ["carat", "price", "cut", "color", "clarity", "depth", "table", "x", "y", "z"],
        key="feature",
    )
    chart(figures.histogram(data, feature), key="histogram")
    st.caption("How many stored appraisals have each value: the stones the model knows best.")
    colour = st.radio(
        "Colour the scatter by", ["clarity", "color", "cut"], horizontal=True, key="colour"
    )
    chart(figures.price_vs_carat(data, colour), key="price_vs_carat")
    grade_choice = st.radio(
        "Grade", ["cut", "color", "clarity"], horizontal=True, key="grade_effect"
    )
    left, right = st.columns(2)
    with left:
        chart(figures.price_per_carat(data, grade_choice), key="ppc")
    with right:
        chart(figures.grade_effect(grade_effect(data, grade_choice), grade_choice), key="effect")
    st.caption(
        "Left: raw price per carat mixes sizes (Ideal cuts look cheaper because they are often "
        "smaller). Right: within similar weights the better grade is worth more."
    )
    chart(figures.data_volume(svc.store.batches()), key="volume")
