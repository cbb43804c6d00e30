"""Performance: the data, the champion's diagnostics on held-out appraisals, and its history."""

import streamlit as st

from app.dashboard import ROUNDING, appraisals, holdout, services
from diamond_model import plots
from diamond_model.analysis import coverage_by_band, grade_effect
from diamond_model.metrics import price_metrics

st.set_page_config(page_title="Performance", page_icon="📈", layout="wide")
st.title("Performance")
svc = services()
data = appraisals(svc)
if data.empty:
    st.info("No appraisals stored yet: run `make run` or upload a batch on the Appraisals page.")
    st.stop()

# One view at a time: the browser then draws a handful of charts instead of a dozen.
view = st.radio("Show", ["Data exploration", "Model diagnostics", "History"], horizontal=True)

if view == "Data exploration":
    st.caption(f"{len(data):,} stored appraisals.")
    feature = st.selectbox(
        "Distribution of",
        ["carat", "price", "cut", "color", "clarity", "depth", "table", "x", "y", "z"],
    )
    st.plotly_chart(plots.histogram(data, feature), width="stretch")
    colour = st.radio("Colour the scatter by", ["clarity", "color", "cut"], horizontal=True)
    st.plotly_chart(plots.price_vs_carat(data, colour), width="stretch")
    grade = st.radio("Grade", ["cut", "color", "clarity"], horizontal=True, key="grade-effect")
    left, right = st.columns(2)
    left.plotly_chart(plots.price_per_carat(data, grade), width="stretch")
    right.plotly_chart(plots.grade_effect(grade_effect(data, grade), grade), width="stretch")
    st.caption(
        "Left: raw price per carat mixes sizes (Ideal cuts look cheaper because they are "
        "often smaller). Right: within similar weights the better grade is worth more."
    )
    st.plotly_chart(plots.data_volume(svc.store.batches()), width="stretch")

elif view == "Model diagnostics":
    champion = svc.cache.get()
    if champion is None:
        st.info("No model trained yet.")
    else:
        version, model = champion
        level = svc.settings.interval_level
        predictions = holdout(svc, version)
        metrics = price_metrics(predictions["price"], predictions["predicted"])
        c = st.columns(4)
        c[0].metric("MAPE", f"{metrics['mape']:.2f}%")
        c[1].metric("MAE", f"${metrics['mae']:,.0f}")
        c[2].metric("R²", f"{metrics['r2']:.3f}")
        c[3].metric("Range coverage", f"{100 * predictions['inside'].mean():.1f}%")
        st.caption(
            f"Model v{version} on {len(predictions):,} held-out appraisals "
            "(never used for training)."
        )
        st.plotly_chart(plots.predicted_vs_actual(predictions), width="stretch")
        left, right = st.columns(2)
        left.plotly_chart(plots.residuals_by(predictions, "price_band"), width="stretch")
        by = right.radio("Errors by grade", ["cut", "color", "clarity"], horizontal=True)
        right.plotly_chart(plots.residuals_by(predictions, by), width="stretch")
        left, right = st.columns(2)
        left.plotly_chart(
            plots.coverage_by_band(coverage_by_band(predictions), level), width="stretch"
        )
        right.plotly_chart(
            plots.feature_importance(model.full.feature_importance()), width="stretch"
        )

else:
    versions = svc.registry.versions_frame()
    if versions.empty:
        st.info("No model versions yet.")
    else:
        st.plotly_chart(plots.metrics_history(versions), width="stretch")
        st.dataframe(versions.round(ROUNDING), hide_index=True, width="stretch")
