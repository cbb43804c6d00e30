"""The expert's desk: upload and preview appraisals, store them, review held suspects, retrain,
promote or roll back, withdraw a batch, browse and export the data, and who did what. Everyone
else sees the history.

About 410 lines because the desk has eight sections, in the order the expert works; each only lays
out what `app.views` and the core give it (no figure is computed here)."""

import pandas as pd
import streamlit as st

from app import views
from app.dashboard import (
    NOTICE_KEY,
    RUN_KEY,
    appraisals,
    chosen_sheet,
    expert_gate,
    notice,
    services,
    show_notice,
    start_retrain,
    through_navigation,
    who,
)
from diamond_model.data.reading import UnusableFileError, neutralise_formulas
from diamond_model.data.schema import APPRAISAL_COLUMNS, APPRAISED_ON, EXAMPLE_APPRAISAL, GRADES
from diamond_model.enums import RunStatus
from diamond_model.learning.review import CorrectionError, correct, held_appraisals
from diamond_model.learning.versions import RegistryError
from diamond_model.storage import audit
from diamond_model.storage.store import FileTooLargeError

through_navigation()
st.set_page_config(page_title="Appraisals and retraining", page_icon="📥", layout="wide")
st.title("Appraisals and retraining")
svc = services()
expert = expert_gate(svc)
show_notice()
st.session_state.pop(NOTICE_KEY, None)

# ---- upload ------------------------------------------------------------------------------------
st.header("Upload appraisals")
if not expert:
    st.caption("Uploading, retraining and promoting need the expert's access code (above).")
else:
    template = pd.DataFrame([{**EXAMPLE_APPRAISAL, APPRAISED_ON: "2026-11-20"}])
    st.download_button(
        "Download a template CSV",
        template[[*APPRAISAL_COLUMNS, APPRAISED_ON]].to_csv(index=False),
        "appraisals-template.csv",
        "text/csv",
        key="template",
    )
    files = st.file_uploader(
        "Files of new appraisals: CSV (any encoding Excel or LibreOffice writes, `,` or `;`) "
        "or a workbook (.xlsx, .ods: the first sheet); columns in any order, Italian or "
        "English names; appraised_on optional",
        # No type filter: a wrong file is answered in words below, not by a red icon.
        accept_multiple_files=True,
        # A new key after locking expert mode empties the box.
        key=f"appraisal_files-{st.session_state.get('uploads', 0)}",
    )
    # Each file keeps its preview until it is stored or dismissed, whatever happens to the others.
    previews = st.session_state.setdefault("previews", {})
    done = st.session_state.setdefault("done_files", set())  # stored or dismissed
    for uploaded in files or []:
        if uploaded.file_id in done:
            continue
        data = uploaded.getvalue()
        sheet = chosen_sheet(uploaded.name, data, key=f"sheet-{uploaded.file_id}")
        shown = previews.get(uploaded.file_id)
        if shown is None or shown.sheet != sheet:  # new, or another sheet chosen
            try:
                previews[uploaded.file_id] = svc.pipeline.preview(
                    data, uploaded.name, champion=svc.cache.get(), sheet=sheet
                )
            except (UnusableFileError, FileTooLargeError) as error:
                st.error(
                    f"**{views.literal(uploaded.name)}** cannot be used: "
                    f"{views.literal(str(error))}"
                )
    for file_id, preview in list(previews.items()):
        result = preview.result
        name = views.literal(preview.filename)
        suspects = preview.live.suspect_list() if preview.live is not None else []
        with st.container(border=True):
            st.markdown(f"#### {name}")
            c1, c2, c3, c4, c5 = st.columns(5)
            c1.metric("Appraisals to store", f"{len(preview.rows_to_store(False)):,}")
            c2.metric("Suspect prices", f"{len(suspects):,}")
            c3.metric("Rows rejected", f"{result.n_rejected:,}")
            c4.metric("Already stored", f"{preview.n_duplicates:,}")
            c5.metric("Measurements set aside", f"{views.lines_in(result.notes):,}")
            st.markdown("\n".join(f"- {views.literal(line)}" for line in preview.sentences()[1:]))
            if suspects:
                st.markdown(
                    "**Suspect prices** (far beyond the model's own errors; held for review "
                    "unless you store them as they are):"
                )
                st.dataframe(
                    views.suspects(suspects), hide_index=True, width="stretch", key=f"sus-{file_id}"
                )
            if not result.rejections.empty:
                st.markdown(
                    "**Rejected rows** (the line in your file, the column, the value, why):"
                )
                st.dataframe(
                    views.in_words(result.rejections),
                    hide_index=True,
                    width="stretch",
                    key=f"rej-{file_id}",
                )
            if not result.notes.empty:
                st.markdown("**Measurements set aside** (stored as missing; the row is kept):")
                st.dataframe(
                    views.in_words(result.notes),
                    hide_index=True,
                    width="stretch",
                    key=f"notes-{file_id}",
                )
            if preview.n_duplicates:
                st.markdown("**Rows already stored** (not stored again):")
                st.dataframe(
                    views.in_words(preview.duplicates_table()),
                    hide_index=True,
                    width="stretch",
                    key=f"dup-{file_id}",
                )
            if preview.drift is not None:
                with st.expander("How its stones differ from the data the model learned from"):
                    st.caption(
                        "For each input, the typical value in the model's training data and in "
                        "this batch, and the population stability index (PSI): about 0 when the "
                        "distributions match, above 0.1 a moderate shift, above 0.25 a large one."
                    )
                    st.dataframe(
                        preview.drift, hide_index=True, width="stretch", key=f"drift-{file_id}"
                    )
            store, dismiss = st.columns([3, 1])
            if dismiss.button("Dismiss", key=f"dismiss-{file_id}"):
                previews.pop(file_id, None)
                done.add(file_id)
                st.rerun()
            if (
                preview.existing_batch is None
                and len(preview.rows_to_store(False)) + preview.n_duplicates
            ):
                keep = store.checkbox(
                    "Store rows identical to stored appraisals too "
                    "(different stones that share every number)",
                    key=f"keep-{file_id}",
                )
                hold = not suspects or not store.checkbox(
                    "Use the suspect prices as they are (I checked them)", key=f"trust-{file_id}"
                )
                rows = preview.rows_to_store(keep, hold)
                held = int(rows["held"].sum())
                label = f"Store {len(rows) - held:,} appraisals from {name}" + (
                    f", hold {held:,} for review" if held else ""
                )
                if len(rows) and store.button(label, key=f"store-{file_id}", type="primary"):
                    submission = svc.pipeline.submit(
                        preview,
                        who(),
                        keep_duplicates=keep,
                        start=lambda why: start_retrain(svc, why),
                        hold_suspects=hold,
                    )
                    previews.pop(file_id, None)
                    done.add(file_id)
                    notice("success", views.literal(" ".join(submission.sentences())))
                    st.rerun()

# ---- held for review ---------------------------------------------------------------------------
held = held_appraisals(svc.pipeline) if expert else None
if held is not None and len(held):
    st.header("Held for review")
    st.caption(
        "Suspect prices stored but not used for training or any figure. Correct one, or confirm "
        "it if it is right; the reason is recorded with the old values, and a retrain follows."
    )
    st.dataframe(
        views.held(held, svc.store.batches()), hide_index=True, width="stretch", key="held"
    )
    with st.form("correct", border=True):
        chosen = st.selectbox(
            "Appraisal",
            held["id"].tolist(),
            format_func=lambda i: views.held_label(held.set_index("id").loc[i]),
            key="held_choice",
        )
        price = st.number_input("Correct price ($, empty keeps it)", min_value=0.0, value=None)
        reason = st.text_input("Why", max_chars=400, key="held_reason")
        fix, keep = st.columns(2)
        corrected = fix.form_submit_button("Correct the price", type="primary")
        confirmed = keep.form_submit_button("The price is right: use it")
    if corrected or confirmed:
        try:
            done = correct(
                svc.pipeline,
                int(chosen),
                {"price": price} if corrected and price else {},
                by=who(),
                reason=reason,
                confirm=confirmed,
                start=lambda why: start_retrain(svc, why),
            )
            notice("success", views.literal(" ".join(done.sentences())))
        except CorrectionError as error:
            notice("error", views.literal(str(error)))
        st.rerun()

# ---- retraining --------------------------------------------------------------------------------
st.header("Model")


@st.fragment(run_every=2)
def latest_run() -> None:
    """The latest retrain, refreshed every two seconds: it runs in the server, so it goes on when
    the expert leaves this page and its result is here when she comes back."""
    runs = svc.pipeline.runs()
    mine = st.session_state.get(RUN_KEY)
    run = views.run_to_show(runs, mine)
    if run is None:
        st.info("No retrain has run yet.")
        return
    if run.status == RunStatus.RUNNING:
        st.session_state["watching"] = run.id
        st.status(views.headline(run), state="running")
        return
    if st.session_state.pop("watching", None) == run.id:
        st.rerun(scope="app")  # the run just ended: refresh the version table and the rest
    (st.success if run.promoted else st.warning)(views.headline(run))
    if run.candidate_metrics:
        st.dataframe(
            views.comparison(run, 100 * svc.settings.interval_level),
            hide_index=True,
            width="stretch",
            key="comparison",
        )
        st.caption(
            "Measured on the held-out appraisals, each model by its recipe fitted without them "
            "(the model that then serves learns from them too)."
        )


latest_run()
if expert:
    left, right = st.columns(2)
    if left.button(
        "Retrain now",
        key="retrain",
        help="Train a new model on every stored appraisal; it replaces the serving one only if "
        "it is not worse on appraisals neither has seen.",
    ):
        start_retrain(svc, "dashboard")
        st.rerun()
    if right.button("Retrain even if nothing changed", key="retrain_force"):
        start_retrain(svc, "dashboard", force=True)
        st.rerun()

infos = svc.registry.versions()
if not infos:
    st.info("No model versions yet.")
else:
    st.dataframe(views.versions(infos), hide_index=True, width="stretch", key="versions")
    if expert:
        confirm = st.session_state.get("confirm")
        candidates = views.others_to_serve(infos)
        target = svc.registry.rollback_target()
        col1, col2 = st.columns(2)
        if candidates:
            chosen = col1.selectbox(
                "Serve another version",
                candidates,
                format_func=views.version_label,
                key="promote_choice",
            )
            if col1.button(f"Serve v{chosen.version}…", key="promote"):
                st.session_state["confirm"] = ("promote", chosen.version)
                st.rerun()
        if target is not None and col2.button(
            f"Roll back to {views.version_label(target)}…", key="rollback"
        ):
            st.session_state["confirm"] = ("rollback", target.version)
            st.rerun()
        if confirm:
            action, version = confirm
            info = svc.registry.info(version)
            with st.container(border=True):
                st.markdown(
                    f"**{'Roll back to' if action == 'rollback' else 'Serve'} "
                    f"{views.version_label(info)}?** Every quote will use it at once."
                )
                override = ""
                if action == "promote" and info.gate_refused:
                    st.warning(
                        f"The gate refused v{version} when it was trained: it was not measurably "
                        "as good as the champion then. Serve it only for a reason you can name."
                    )
                    override = st.text_input(
                        "Why should it serve anyway? (recorded in the history)",
                        key="override_reason",
                        max_chars=400,
                    )
                yes, no = st.columns(2)
                if yes.button(
                    f"Yes, serve v{version}",
                    key="confirm_yes",
                    type="primary",
                    disabled=action == "promote" and info.gate_refused and not override.strip(),
                ):
                    try:
                        if action == "rollback":
                            svc.registry.rollback(by=who())
                        else:
                            svc.registry.promote(
                                version,
                                note="promoted in the dashboard",
                                override=override,
                                by=who(),
                            )
                        notice("success", f"v{version} now prices every quote.")
                    except RegistryError as error:
                        notice("error", str(error))
                    st.session_state.pop("confirm", None)
                    st.rerun()
                if no.button("Cancel", key="confirm_no"):
                    st.session_state.pop("confirm", None)
                    st.rerun()

runs = svc.pipeline.runs()
if runs:
    with st.expander("Every retrain"):
        st.dataframe(views.runs(runs), hide_index=True, width="stretch", key="runs")

# ---- stored data -------------------------------------------------------------------------------
st.header("Stored data")
batches = svc.store.batches()
if batches.empty:
    st.info("No appraisals stored yet.")
    st.stop()
st.dataframe(views.batches(batches), hide_index=True, width="stretch", key="batches")
ids = batches["id"].tolist()[::-1]
names = dict(zip(batches["id"], batches["filename"], strict=True))
batch_id = st.selectbox("Batch", ids, format_func=lambda i: f"#{i} — {names[i]}", key="batch")
if expert:
    row = batches.set_index("id").loc[batch_id]
    withdrawn = bool(row["withdrawn"])
    verb = "Restore" if withdrawn else "Withdraw"
    if st.button(f"{verb} batch {batch_id}…", key="withdraw"):
        st.session_state["confirm_batch"] = batch_id
        st.rerun()
    if st.session_state.get("confirm_batch") == batch_id:
        with st.container(border=True):
            what = (
                "It will be used again for training and comparables"
                if withdrawn
                else "It stays stored for the record but is no longer used for training or "
                "comparables"
            )
            st.markdown(
                f"**{verb} batch {batch_id} ({views.literal(str(row['filename']))}, "
                f"{row['rows_accepted']:,} appraisals)?** "
                f"{what}; a retrain follows."
            )
            yes, no = st.columns(2)
            if yes.button(f"Yes, {verb.lower()} it", key="withdraw_yes", type="primary"):
                _, retraining = svc.pipeline.set_withdrawn(
                    batch_id,
                    not withdrawn,
                    "withdrawn in the dashboard",
                    start=lambda why: start_retrain(svc, why),
                    by=who(),
                )
                notice(
                    "success",
                    f"Batch {batch_id} {'restored' if withdrawn else 'withdrawn'}. "
                    f"{retraining.note}",
                )
                st.session_state.pop("confirm_batch", None)
                st.rerun()
            if no.button("Cancel", key="withdraw_no"):
                st.session_state.pop("confirm_batch", None)
                st.rerun()
filters = {
    grade: column.multiselect(grade.capitalize(), GRADES[grade], key=f"filter-{grade}")
    for column, grade in zip(st.columns(3), GRADES, strict=True)
}
shown = views.filter_appraisals(svc.store.appraisals(batch_id=batch_id), None, filters)
st.dataframe(shown, hide_index=True, width="stretch", height=300, key="rows")
rejected, set_aside = svc.store.rejected_rows(batch_id), svc.store.set_aside_rows(batch_id)
st.markdown(
    f"Batch #{batch_id}: {views.lines_in(rejected)} rows rejected, "
    f"{views.lines_in(set_aside)} with measurements set aside."
)
if len(rejected):
    st.dataframe(views.in_words(rejected), hide_index=True, width="stretch", key="rejected")
if len(set_aside):
    st.dataframe(views.in_words(set_aside), hide_index=True, width="stretch", key="set_aside")
if expert:
    st.download_button(
        "Export every appraisal (CSV)",
        neutralise_formulas(views.filter_appraisals(appraisals(svc), None, {})).to_csv(index=False),
        "appraisals.csv",
        "text/csv",
        key="export_appraisals",
    )
    st.download_button(
        "Export every rejected row (CSV)",
        neutralise_formulas(svc.store.rejected_rows()).to_csv(index=False),
        "rejected.csv",
        "text/csv",
        key="export_rejected",
    )

# ---- who did what ------------------------------------------------------------------------------
st.header("Who did what")
log = audit.entries(svc.store.engine, 200)
if log.empty:
    st.caption("Nothing has been changed yet.")
else:
    st.dataframe(views.audit(log), hide_index=True, width="stretch", key="audit")
    st.caption(
        "Every upload, correction, withdrawal, restore, promotion and rollback, newest first, "
        "with the person signed in to expert mode or the API key that made it."
    )
