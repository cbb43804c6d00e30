"""Dashboard entry point: navigation, and the home page (the serving model in plain words)."""

import streamlit as st

from app import views
from app.dashboard import answers, chart, expert_gate, services
from diamond_model.learning.loop import BUNDLED_DATASET
from diamond_model.reports import model_figures
from diamond_model.reports.owner import TARGET_MAPE

st.set_page_config(page_title="Diamond appraisals", page_icon="💎", layout="wide")

PRICE = st.Page("pages/1_Price_a_stone.py", title="Price a stone", icon=":material/sell:")
APPRAISALS = st.Page(
    "pages/2_Appraisals_and_retraining.py",
    title="Appraisals and retraining",
    icon=":material/upload_file:",
)
PERFORMANCE = st.Page("pages/3_Performance.py", title="Performance", icon=":material/monitoring:")
BUSINESS = st.Page("pages/4_Business.py", title="Business", icon=":material/payments:")


def first_model() -> None:
    """An empty database: shop staff read a sentence; the expert loads the bundled appraisals."""
    st.warning(
        "No price can be given yet: no appraisals are stored and no model is trained. The "
        "expert can load the bundled appraisals and train the first model here."
    )
    svc = services()
    if expert_gate(svc):
        label = "Load the bundled appraisals and train the first model"
        if st.button(label, key="bootstrap", type="primary"):
            with st.status("Loading the appraisals and training (a few seconds)…") as status:
                for message in svc.pipeline.initialise(BUNDLED_DATASET):
                    st.write(message[0].upper() + message[1:])
                status.update(label="The first model is ready.", state="complete")
            svc.cache.refresh()
            st.rerun()


def home() -> None:
    st.title("Diamond appraisals")
    st.write(
        "Prices for round diamonds from their 4Cs and measurements, learned from the expert's "
        "appraisals: an estimate, a likely range for this stone, how sure it is, and the reasons "
        "in dollars."
    )
    svc = services()
    champion = svc.cache.get()
    if champion is None:
        first_model()
    else:
        version, model = champion
        info = svc.registry.info(version)
        st.caption(
            f"Model {info.version}, trained {info.created_at:%d %B %Y} on {info.train_rows:,} "
            "appraisals."
        )
        three = answers(svc, version)
        if three is None:
            st.stop()
        good, better, changed = st.columns(3)
        for column, answer in zip(
            (good, better, changed), (three.good, three.better, three.changed), strict=True
        ):
            with column:
                st.subheader(answer.question)
                say = {True: st.success, False: st.error, None: st.info}[answer.good]
                say(answer.verdict)
                for sentence in answer.sentences:
                    st.markdown(f"- {sentence}")
        pictures = st.columns(3)
        with pictures[0]:
            chart(model_figures.against_target(three.mape, TARGET_MAPE), key="home_target")
        with pictures[1]:
            chart(
                model_figures.history(
                    views.history_frame(svc.registry.versions()), "Average error by version"
                ),
                key="home_history",
            )
        with pictures[2]:
            chart(
                model_figures.market_index(model.market.frame(), "The market level by month"),
                key="home_market",
            )
        _, where = views.accuracy(info)
        st.caption(f"{where}.")
        live = svc.latest_readings(3)
        if len(live):
            st.markdown(
                "**How the serving model read the latest uploads, before training on them:**"
            )
            st.dataframe(views.batches(live), hide_index=True, width="stretch", key="home_live")

    st.subheader("Where to go")
    st.page_link(PRICE, label="Price a stone — for the counter")
    st.page_link(APPRAISALS, label="Appraisals and retraining — the expert's desk")
    st.page_link(PERFORMANCE, label="Performance — is the model good, and getting better?")
    st.page_link(BUSINESS, label="Business — what the API clients bring (owner)")


st.navigation(
    [
        st.Page(home, title="Home", icon=":material/home:", default=True),
        PRICE,
        APPRAISALS,
        PERFORMANCE,
        BUSINESS,
    ]
).run()
