"""Dashboard entry point: navigation, and the home page (the serving model in plain words)."""

import streamlit as st

from app.dashboard import services
from diamond_model.metrics import plain_words

st.set_page_config(page_title="Diamond appraisals", page_icon="💎", layout="wide")

PRICE = st.Page("pages/1_Price_a_stone.py", title="Price a stone", icon=":material/sell:")
APPRAISALS = st.Page(
    "pages/2_Appraisals_and_retraining.py",
    title="Appraisals and retraining",
    icon=":material/upload_file:",
)
PERFORMANCE = st.Page("pages/3_Performance.py", title="Performance", icon=":material/monitoring:")


def home() -> None:
    st.title("Diamond appraisals")
    st.write(
        "Prices for round diamonds from their 4Cs and measurements, learned from the expert's "
        "appraisals: an estimate, a likely range, and the reasons in dollars."
    )

    svc = services()
    champion = svc.registry.champion_version()
    if champion is None:
        st.warning(
            "No price model is trained yet. Run `make run` (it loads the bundled appraisals and "
            "trains the first model), or upload appraisals on the **Appraisals and retraining** "
            "page."
        )
    else:
        info = svc.registry.info(champion)
        st.subheader(
            f"Model v{info.version}, trained {info.created_at:%d %B %Y} "
            f"on {info.train_rows:,} appraisals"
        )
        columns = st.columns(4)
        metrics = info.metrics
        columns[0].metric("Typical error (median)", f"{metrics['median_ape']:.1f}%")
        columns[1].metric("Within 10% of the expert", f"{metrics['within_10pct']:.0f}%")
        columns[2].metric("Average error", f"${metrics['mae']:,.0f}")
        columns[3].metric(
            f"Real prices inside the {metrics['level']:.0f}% range", f"{metrics['coverage']:.0f}%"
        )
        for sentence in plain_words(metrics):
            st.markdown(f"- {sentence}")
        st.caption(
            f"Measured on {info.holdout_rows:,} appraisals the model never saw. "
            f"{svc.store.count_appraisals():,} appraisals are stored."
        )

    st.subheader("Where to go")
    st.page_link(PRICE, label="Price a stone — for the shop")
    st.page_link(APPRAISALS, label="Appraisals and retraining — for the expert: uploads and models")
    st.page_link(PERFORMANCE, label="Performance — charts for Francesco")


st.navigation(
    [
        st.Page(home, title="Home", icon=":material/home:", default=True),
        PRICE,
        APPRAISALS,
        PERFORMANCE,
    ]
).run()
