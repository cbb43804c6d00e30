"""Appraisals and retraining: upload (expert), retrain, promote or roll back, browse data."""

import hashlib

import pandas as pd
import streamlit as st

from app.dashboard import ROUNDING, appraisals, expert_gate, services
from diamond_model.analysis import distribution_shift
from diamond_model.pipeline import RetrainInProgressError, RetrainOutcome
from diamond_model.registry import RegistryError
from diamond_model.schema import APPRAISAL_COLUMNS, EXAMPLE_APPRAISAL, GRADES
from diamond_model.store import AlreadyIngestedError, FileTooLargeError
from diamond_model.training import NotEnoughDataError
from diamond_model.validation import UnusableFileError

st.set_page_config(page_title="Appraisals and retraining", page_icon="📥", layout="wide")
st.title("Appraisals and retraining")
svc = services()
expert = expert_gate(svc)

METRICS = {
    "mape": "MAPE (%)",
    "median_ape": "Median error (%)",
    "mae": "MAE ($)",
    "rmse": "RMSE ($)",
    "r2": "R²",
    "coverage": "Range coverage (%)",
    "n": "Held-out stones",
}


def show_outcome(outcome: RetrainOutcome) -> None:
    (st.success if outcome.promoted else st.warning)(f"Run {outcome.run_id}: {outcome.reason}")
    for comparison in outcome.comparisons:
        table = pd.DataFrame({"candidate": comparison.candidate, "champion": comparison.champion})
        table = table.loc[[k for k in METRICS if k in table.index]].rename(index=METRICS)
        st.markdown(f"**{comparison.name.capitalize()}** ({comparison.n} stones)")
        st.dataframe(table.round(3), width="stretch")
    if not outcome.comparisons and outcome.candidate_metrics:
        table = pd.Series(outcome.candidate_metrics).reindex(list(METRICS)).rename(index=METRICS)
        st.dataframe(table.round(3).to_frame("candidate"), width="stretch")


def retrain(trigger: str, force: bool = False) -> None:
    with st.status("Retraining on every stored appraisal…", expanded=True) as status:
        bar = st.progress(0.0, text="starting")
        try:
            outcome = svc.pipeline.retrain(
                trigger=trigger,
                force=force,
                progress=lambda message, fraction: bar.progress(fraction, text=message),
            )
        except (RetrainInProgressError, NotEnoughDataError) as error:
            status.update(label=str(error), state="error")
            return
        status.update(label=outcome.reason.split(" — ")[0].capitalize(), state="complete")
    st.session_state["last_outcome"] = outcome


# ---- upload ------------------------------------------------------------------------------------
st.header("Upload appraisals")
template = pd.DataFrame([EXAMPLE_APPRAISAL])[list(APPRAISAL_COLUMNS)]
st.download_button(
    "Download a template CSV", template.to_csv(index=False), "appraisals-template.csv", "text/csv"
)
files = st.file_uploader(
    "CSV files of new appraisals (UTF-8, `,` or `;`, columns in any order)",
    type=["csv", "txt"],
    accept_multiple_files=True,
    disabled=not expert,
    key="appraisal_files",
)
if not expert:
    st.caption("Enter the expert's access code above to upload, retrain and promote.")
for uploaded in files or []:
    data = uploaded.getvalue()
    existing = svc.store.find_batch_by_hash(hashlib.sha256(data).hexdigest())
    if existing is not None:
        st.info(
            f"**{uploaded.name}** is stored as batch {existing.id} "
            f"({existing.rows_accepted:,} appraisals); uploading it again adds nothing."
        )
        continue
    try:
        _, result = svc.store.preview(data)
    except (UnusableFileError, FileTooLargeError) as error:
        st.error(f"**{uploaded.name}** cannot be used: {error}")
        continue
    with st.container(border=True):
        st.markdown(f"#### Preview of {uploaded.name}")
        c1, c2, c3 = st.columns(3)
        c1.metric("Rows accepted", f"{result.n_accepted:,}")
        c2.metric("Rows rejected", f"{result.n_rejected:,}")
        c3.metric("Columns ignored", len(result.ignored_columns))
        if result.ignored_columns:
            st.caption("Ignored columns: " + ", ".join(result.ignored_columns))
        if not result.rejections.empty:
            st.markdown("Rejected rows (line in the file, column, value, reason):")
            st.dataframe(result.rejections, hide_index=True, width="stretch")
        known = appraisals(svc)
        if result.n_accepted and not known.empty:
            shift = distribution_shift(known, result.accepted)
            if shift["large shift"].any():
                st.warning(
                    "This batch differs a lot from the data the model knows in: "
                    + ", ".join(shift.loc[shift["large shift"], "feature"])
                )
            st.dataframe(shift, hide_index=True, width="stretch")
        if result.n_accepted and st.button(
            f"Store {result.n_accepted:,} appraisals from {uploaded.name}",
            key=f"store-{uploaded.file_id}",
            type="primary",
        ):
            try:
                report = svc.store.ingest(data, uploaded.name, "dashboard")
            except AlreadyIngestedError as error:
                st.info(str(error))
            else:
                st.success(
                    f"Stored batch {report.batch_id}: {report.rows_accepted:,} appraisals "
                    f"({report.rows_rejected:,} rejected rows recorded)."
                )
                if svc.settings.auto_retrain:
                    retrain(f"batch {report.batch_id}")

# ---- retrain and models ------------------------------------------------------------------------
st.header("Model")
if expert:
    left, right = st.columns(2)
    if left.button(
        "Retrain now",
        help="Train a candidate on every stored appraisal; it replaces the "
        "champion only if it is not worse on held-out appraisals.",
    ):
        retrain("dashboard")
    if right.button("Retrain even if no data changed"):
        retrain("dashboard", force=True)
if "last_outcome" in st.session_state:
    show_outcome(st.session_state["last_outcome"])

versions = svc.registry.versions_frame()
if versions.empty:
    st.info("No model versions yet.")
else:
    st.dataframe(versions.round(ROUNDING), hide_index=True, width="stretch")
    if expert:
        col1, col2 = st.columns(2)
        chosen = col1.selectbox("Version to serve", versions["version"].tolist()[::-1])
        if col1.button(f"Promote version {chosen}"):
            svc.registry.promote(int(chosen), note="promoted in the dashboard")
            st.success(f"Version {chosen} is now the champion; the next quote uses it.")
            st.rerun()
        if col2.button("Roll back to the previous champion"):
            try:
                st.success(f"Rolled back: version {svc.registry.rollback()} is now the champion.")
            except RegistryError as error:
                st.warning(str(error))

runs = svc.pipeline.runs()
if runs:
    st.markdown("**Training runs**")
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "run": r.id,
                    "started": r.started_at,
                    "trigger": r.trigger,
                    "status": r.status,
                    "candidate": r.candidate_version,
                    "message": r.message,
                }
                for r in runs
            ]
        ),
        hide_index=True,
        width="stretch",
    )

# ---- stored data -------------------------------------------------------------------------------
st.header("Stored data")
batches = svc.store.batches()
if batches.empty:
    st.info("No appraisals stored yet.")
    st.stop()
st.dataframe(batches.drop(columns=["sha256"]), hide_index=True, width="stretch")
batch_id = st.selectbox(
    "Batch",
    batches["id"].tolist()[::-1],
    format_func=lambda i: f"#{i} — " + batches.set_index("id").loc[i, "filename"],
)
filters = {}
columns = st.columns(3)
for column, grade in zip(columns, GRADES, strict=True):
    picked = column.multiselect(grade.capitalize(), GRADES[grade], key=f"filter-{grade}")
    if picked:
        filters[grade] = picked
rows = appraisals(svc)
rows = rows[rows["batch_id"] == batch_id]
for grade, picked in filters.items():
    rows = rows[rows[grade].isin(picked)]
st.dataframe(rows.drop(columns=["id"]), hide_index=True, width="stretch", height=300)
rejected = svc.store.rejected_rows(batch_id)
st.markdown(
    f"Rejected rows of batch #{batch_id}: {rejected['line'].nunique() if len(rejected) else 0}"
)
if len(rejected):
    st.dataframe(rejected, hide_index=True, width="stretch")
st.download_button(
    "Export every appraisal (CSV)",
    appraisals(svc).drop(columns=["id"]).to_csv(index=False),
    "appraisals.csv",
    "text/csv",
)
st.download_button(
    "Export every rejected row (CSV)",
    svc.store.rejected_rows().to_csv(index=False),
    "rejected.csv",
    "text/csv",
)
