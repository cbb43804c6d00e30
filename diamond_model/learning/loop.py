"""The learning loop: uploads stored through one path, one retrain at a time, a gate that follows
the market and refuses poison, every run recorded.

The gate is in `learning.gate`; what a retrain or an upload comes to, in `learning.outcomes`;
the preview in `learning.preview`; run bookkeeping in `storage.runs`. What stays here (about 570
lines) is the order of one retrain's steps and the transactions that must see each other (a
withdrawal and the champion's fall-back, an upload and its follow-up run), kept in one class so
that order can be read top to bottom.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import threading
import time
from collections.abc import Callable
from datetime import date
from importlib import resources
from pathlib import Path

import pandas as pd
from sqlalchemy import select, update

from diamond_model.data.schema import BUNDLED_APPRAISED_ON, BUNDLED_UPLOADER
from diamond_model.enums import RunStatus, VersionStatus
from diamond_model.learning import monotonicity
from diamond_model.learning.gate import Comparison, gate, paired_noise
from diamond_model.learning.outcomes import (
    RetrainCancelled,
    Retraining,
    RetrainInProgressError,
    RetrainOutcome,
    RunTicket,
    Submission,
)
from diamond_model.learning.preview import BatchPreview, LiveScore, prepare, upload_digest
from diamond_model.learning.registry import Registry
from diamond_model.learning.training import (
    evaluate,
    fingerprint,
    holdout_mask,
    prices_at_their_months,
    train,
)
from diamond_model.learning.versions import ArtefactRefusedError, Champion, json_safe
from diamond_model.pricing.model import MODEL_FORMAT, PricingModel
from diamond_model.settings import Settings
from diamond_model.storage import audit
from diamond_model.storage.lease import Lease, force_unlock, lease_state, request_follow_up
from diamond_model.storage.runs import CLEARED, LAPSED, Runs
from diamond_model.storage.store import RETRAIN_LOCK, Store
from diamond_model.storage.tables import Batch, ModelVersion, TrainingRun, utcnow

log = logging.getLogger(__name__)

Progress = Callable[[str, float], None]
BUNDLED_DATASET = Path(str(resources.files("diamond_model") / "data" / "diamonds.csv"))
FIRST_MODEL_MAX_MAPE = 50.0
RECOVERY = "recovery"  # trigger of a run that redoes what a dead process left undone


class LearningLoop:
    """Uploads, withdrawals, retraining and bootstrap, over one store and its registry."""

    def __init__(self, store: Store, registry: Registry, settings: Settings) -> None:
        self.store = store
        self.registry = registry
        self.settings = settings
        self.run_book = Runs(store)

    @classmethod
    def from_settings(cls, settings: Settings) -> LearningLoop:
        store = Store(
            settings.resolved_database_url,
            max_upload_bytes=settings.max_upload_bytes,
            max_rows=settings.max_upload_rows,
        )
        return cls(
            store, Registry(store, settings.holdout_fraction, settings.interval_level), settings
        )

    def champion(self) -> Champion | None:
        """The serving champion loaded from the database (for one-off commands)."""
        version = self.registry.champion_version()
        if version is None:
            return None
        info = self.registry.info(version)
        if info is None or not info.servable:
            return None
        return Champion(version, self.registry.load(version))

    # ---- uploads ------------------------------------------------------------------------------

    def preview(
        self,
        data: bytes,
        filename: str,
        upload_date: date | None = None,
        champion: Champion | None = None,
        sheet: str | None = None,
    ) -> BatchPreview:
        """Check an upload (a CSV file, or a workbook's first or named sheet) against the rules,
        the store and the serving model; write nothing."""
        today = upload_date or date.today()
        raw, result = self.store.read_upload(data, today=max(today, date.today()), sheet=sheet)
        existing = self.store.find_batch_by_hash(upload_digest(data, sheet))
        return prepare(
            data,
            filename,
            raw,
            result,
            today,
            self.store.stored_matches,
            None if existing is None else (existing.id, existing.withdrawn),
            champion if champion is not None else self.champion(),
            self.settings.interval_level,
            sheet,
        )

    def submit(
        self,
        preview: BatchPreview,
        uploaded_by: str,
        retrain: bool | None = None,
        keep_duplicates: bool = False,
        start: Callable[[str], RetrainOutcome | int] | None = None,
        hold_suspects: bool = True,
    ) -> Submission:
        """Store a previewed batch, then retrain if asked (or if automatic retraining is on).

        `start` begins a retrain for a trigger and returns its outcome (synchronous, the default)
        or its run id (a background run, from the API and the dashboard). When another retrain
        is running, it is asked to run once more with this batch before it stops."""
        if preview.existing_batch is not None:
            return Submission(preview, preview.existing_batch, 0, already_stored=True)
        rows = preview.rows_to_store(keep_duplicates, hold_suspects)
        if rows.empty and preview.result.n_accepted:
            return Submission(preview, None, 0, already_stored=True)
        stored = self.store.insert_batch(
            sha256=preview.sha256,
            filename=preview.filename,
            uploaded_by=uploaded_by,
            result=preview.result,
            raw=preview.raw,
            rows=rows,
            live=None if preview.live is None else json_safe(preview.live.as_dict()),
            skip_stored=not keep_duplicates,
        )
        should = self.settings.auto_retrain if retrain is None else retrain
        retraining = None
        if stored.rows_stored:
            retraining = (
                self.retrain_after(f"batch {stored.batch_id}", start)
                if should
                else Retraining("Not retrained: automatic retraining is off.")
            )
        held = int(rows["held"].sum()) if "held" in rows else 0
        return Submission(preview, stored.batch_id, stored.rows_stored, False, retraining, held)

    def retrain_after(
        self, trigger: str, start: Callable[[str], RetrainOutcome | int] | None
    ) -> Retraining:
        start = start or (lambda why: self.retrain(trigger=why))
        for _ in range(3):
            try:
                result = start(trigger)
            except RetrainInProgressError:
                if request_follow_up(self.store, RETRAIN_LOCK):
                    return Retraining(
                        "A retrain is running: it will train once more with this data when it "
                        "finishes (a follow-up run)."
                    )
                continue  # the running retrain has just let go: try again
            if isinstance(result, RetrainOutcome):
                return Retraining(result.last.headline, outcome=result)
            return Retraining(f"Retraining as run {result}.", run_id=result)
        return Retraining("Not retrained: the retraining lease stayed busy; retrain later.")

    def ingest(
        self,
        data: bytes,
        filename: str,
        uploaded_by: str,
        retrain: bool | None = None,
        keep_duplicates: bool = False,
        upload_date: date | None = None,
    ) -> Submission:
        """Preview and store in one call (the CLI and scripts)."""
        return self.submit(
            self.preview(data, filename, upload_date), uploaded_by, retrain, keep_duplicates
        )

    def set_withdrawn(
        self,
        batch_id: int,
        withdrawn: bool,
        note: str = "",
        retrain: bool | None = None,
        start: Callable[[str], RetrainOutcome | int] | None = None,
        by: str = "unknown",
    ) -> tuple[Batch, Retraining]:
        """Withdraw (or restore) a batch, then retrain if automatic retraining is on.

        A champion that learned from the withdrawn batch stops serving in the same transaction:
        the newest earlier champion that did not serves instead (a `fallback` champion event)."""
        with self.store.session() as session, session.begin():
            batch = self.store.set_withdrawn(batch_id, withdrawn, note, session)
            audit.record(
                session, by, "withdraw" if withdrawn else "restore", f"batch {batch_id}", note
            )
            fallen = (
                self.registry.fall_back(session, f"withdrawn batch {batch_id}")
                if withdrawn
                else None
            )
            session.expunge(batch)
        should = self.settings.auto_retrain if retrain is None else retrain
        if not should:
            retraining = Retraining("Not retrained: automatic retraining is off; retrain to apply.")
        else:
            verb = "withdrawn" if withdrawn else "restored"
            retraining = self.retrain_after(f"batch {batch_id} {verb}", start)
        if fallen is not None:
            retraining = dataclasses.replace(retraining, note=f"{fallen} {retraining.note}")
        return batch, retraining

    # ---- retrain ------------------------------------------------------------------------------

    def begin(self, trigger: str = "manual", wait_seconds: float = 0.0) -> RunTicket:
        """Take the retraining lease and record a run; `execute` must follow."""
        lease = Lease.take(self.store, RETRAIN_LOCK, wait_seconds, self.settings.lease_seconds)
        if lease is None:
            state = lease_state(self.store, RETRAIN_LOCK)
            since = f" since {state.acquired_at:%Y-%m-%d %H:%M:%S} UTC" if state else ""
            which = f" (run {state.run_id})" if state and state.run_id else ""
            raise RetrainInProgressError(
                f"A retrain is already running{which}{since}. Wait for it to finish (its result "
                "appears in the training runs), then try again."
            )
        run_id = None
        try:
            run_id = self.run_book.open(trigger)
            lease.mark(run_id)
        except BaseException as error:  # a signal may land between recording the run and marking
            self._abandon(lease, run_id, error)
            raise
        return RunTicket(run_id=run_id, lease=lease, trigger=trigger)

    def _abandon(self, lease: Lease, run_id: int | None, error: BaseException) -> None:
        """Let go of the lease and record why the run ended early."""
        lease.abandon()
        if run_id is None:
            return
        interrupted = not isinstance(error, Exception)
        reason = "interrupted"
        if isinstance(error, RetrainCancelled):
            reason = f"abandoned: {error}"
        elif isinstance(error, SystemExit | KeyboardInterrupt):
            reason = "abandoned: the process was stopped (signal or Ctrl-C)"
        self.run_book.finish(
            run_id,
            status=RunStatus.ABANDONED if interrupted else RunStatus.FAILED,
            message=reason if interrupted else f"{type(error).__name__}: {error}",
        )

    def execute(
        self,
        ticket: RunTicket,
        progress: Progress | None = None,
        force: bool = False,
        cancel: threading.Event | None = None,
    ) -> RetrainOutcome:
        """Carry out a begun run, and the follow-ups requested meanwhile; always records the end
        of each run and releases the lease."""
        outcomes: list[RetrainOutcome] = []
        run_id = ticket.run_id
        try:
            while True:
                outcomes.append(self._run_once(run_id, progress, force, cancel))
                if ticket.lease.release():
                    break
                run_id = self.run_book.open(f"follow-up: new data during run {run_id}")
                ticket.lease.mark(run_id)
                force = False
        except BaseException as error:  # also Streamlit's StopException and KeyboardInterrupt
            self._abandon(ticket.lease, run_id, error)
            raise
        first = outcomes[0]
        if len(outcomes) > 1:
            first = RetrainOutcome(**{**first.__dict__, "follow_ups": outcomes[1:]})
        return first

    def _run_once(
        self,
        run_id: int,
        progress: Progress | None,
        force: bool,
        cancel: threading.Event | None,
    ) -> RetrainOutcome:
        def notify(message: str, fraction: float) -> None:
            if cancel is not None and cancel.is_set():
                raise RetrainCancelled("the server is shutting down")
            if progress is not None:
                progress(message, fraction)

        outcome = self._retrain(run_id, notify, time.perf_counter(), force)
        notify("done", 1.0)
        return outcome

    def retrain(
        self,
        trigger: str = "manual",
        wait_seconds: float = 0.0,
        progress: Progress | None = None,
        force: bool = False,
    ) -> RetrainOutcome:
        """Train a candidate on all active appraisals and promote it if it passes the gate."""
        return self.execute(self.begin(trigger, wait_seconds), progress, force)

    def _retrain(
        self, run_id: int, notify: Progress, started: float, force: bool
    ) -> RetrainOutcome:
        notify("loading appraisals", 0.05)
        appraisals = self.store.appraisals()
        data = fingerprint(appraisals)
        max_batch = int(appraisals["batch_id"].max()) if len(appraisals) else 0
        learned = sorted(int(b) for b in appraisals["batch_id"].unique())
        champion_version = self.registry.champion_version()
        champion_row = self._version_row(champion_version)
        if champion_row is not None and champion_row.format != MODEL_FORMAT:
            champion_row = None  # kept for the record; not a model this release can compare with
        if not force:
            if champion_row is not None and champion_row.data_fingerprint == data:
                reason = (
                    f"skipped: no new appraisals since champion v{champion_version} was trained"
                )
                return self._skip(run_id, reason, champion_version, data)
            previous = self.run_book.last_attempt(data)
            if previous is not None:
                reason = (
                    f"skipped: run {previous.id} already trained on exactly these appraisals "
                    f"({previous.status}: v{previous.candidate_version})"
                )
                return self._skip(run_id, reason, champion_version, data)

        notify(f"training a candidate on {len(appraisals):,} appraisals", 0.1)
        result = train(
            appraisals,
            self.settings.interval_level,
            self.settings.holdout_fraction,
            budget=self.settings.size_search_seconds,
        )
        notify("checking that no better grade is priced lower", 0.75)
        proof = monotonicity.check(result.model, appraisals)
        result.metrics.update(proof.figures())  # stored with the version
        notify("comparing the candidate with the champion", 0.8)
        comparisons = self._compare(appraisals, result.exam, champion_row)
        if not proof.holds:
            ok, reason = False, proof.refusal()
        elif champion_row is None:
            ok = (
                math.isfinite(result.metrics["mape"])
                and result.metrics["mape"] < FIRST_MODEL_MAX_MAPE
            )
            reason = (
                "promoted: first model of this release, average error "
                f"{result.metrics['mape']:.2f}% on its held-out appraisals"
                if ok
                else f"not promoted: the first model's average error {result.metrics['mape']:.1f}% "
                f"is above the {FIRST_MODEL_MAX_MAPE:g}% sanity limit"
            )
        else:
            unsound = self._unsound_batches(champion_row.max_batch_id)
            ok, reason = gate(comparisons, self.settings.promotion_tolerance, unsound)

        notify("saving", 0.9)
        reference = self.registry.reference_metrics(result.exam, self.registry.reference_set())
        status = RunStatus.PROMOTED if ok else RunStatus.REJECTED
        champion_metrics = None
        if comparisons:  # with the noise of each gap, so the desk can say "within noise"
            champion_metrics = {
                **comparisons[0].champion,
                **{f"{k}_noise": v for k, v in comparisons[0].noise.items()},
            }
        with self.store.session() as session, session.begin():
            version = self.registry.add(
                session,
                result,
                VersionStatus.CANDIDATE if ok else VersionStatus.REJECTED,
                max_batch,
                run_id,
                reference,
                learned_from=learned,
                judged_on=sorted({*learned, *self.registry.reference_batches()}),
            )
            if ok:
                self.registry.set_champion(session, version, "promote", f"run {run_id}")
                audit.record(session, f"retrain run {run_id}", "promote", f"v{version}", reason)
            session.execute(
                update(TrainingRun)
                .where(TrainingRun.id == run_id)
                .values(
                    status=status,
                    message=reason,
                    promoted=ok,
                    finished_at=utcnow(),
                    candidate_version=version,
                    champion_version=champion_version,
                    candidate_metrics=json_safe(result.metrics),
                    champion_metrics=json_safe(champion_metrics) if champion_metrics else None,
                    data_fingerprint=data,
                    max_batch_id=max_batch,
                )
            )
        log.info("run %d: %s", run_id, reason)
        return RetrainOutcome(
            run_id=run_id,
            status=status,
            promoted=ok,
            reason=reason,
            candidate_version=version,
            champion_version=champion_version,
            candidate_metrics=result.metrics,
            champion_metrics=champion_metrics,
            comparisons=comparisons,
            seconds=time.perf_counter() - started,
        )

    def _skip(
        self, run_id: int, reason: str, champion_version: int | None, data: str
    ) -> RetrainOutcome:
        self.run_book.finish(run_id, RunStatus.SKIPPED, reason, champion_version=champion_version)
        return RetrainOutcome(run_id, RunStatus.SKIPPED, False, reason, None, champion_version)

    def _version_row(self, version: int | None) -> ModelVersion | None:
        if version is None:
            return None
        with self.store.session() as session:
            return session.get(ModelVersion, version)

    def _unsound_batches(self, since_batch: int) -> list[tuple[int, LiveScore]]:
        """Active batches added after the champion's data whose prices failed the live check."""
        with self.store.session() as session:
            rows = session.execute(
                select(Batch.id, Batch.live).where(
                    Batch.id > since_batch, Batch.withdrawn_at.is_(None), Batch.live.is_not(None)
                )
            ).all()
        scores = [(batch_id, LiveScore.from_dict(live)) for batch_id, live in rows if live]
        return [(batch_id, score) for batch_id, score in scores if not score.consistent]

    def _compare(
        self, appraisals: pd.DataFrame, candidate: PricingModel, champion_row: ModelVersion | None
    ) -> list[Comparison]:
        """The candidate's exam against the champion's on the held-out appraisals: one recipe
        against the other, stone by stone, each fitted without them (the served models saw
        them)."""
        if champion_row is None:
            return []
        champion = self.registry.exam(champion_row.version)
        level = self.settings.interval_level
        held_out = appraisals.loc[holdout_mask(appraisals, self.settings.holdout_fraction)]
        sets = [("all held-out appraisals", held_out)]
        known = held_out.loc[held_out["batch_id"] <= champion_row.max_batch_id]
        if 0 < len(known) < len(held_out):
            sets.append(("held-out appraisals the champion knew", known))
        out = []
        for name, rows in sets:
            if not len(rows):
                continue
            prices = rows["price"].to_numpy(dtype=float)
            noise = paired_noise(
                prices,
                prices_at_their_months(candidate, rows, level),
                prices_at_their_months(champion, rows, level),
            )
            out.append(
                Comparison(
                    name,
                    len(rows),
                    evaluate(candidate, rows, level),
                    evaluate(champion, rows, level),
                    noise,
                )
            )
        return out

    # ---- runs and operations ------------------------------------------------------------------

    def recover_lapsed(self, start: Callable[[str], object]) -> str | None:
        """When the process holding the retraining lease died (its lease lapsed unreleased), do
        what it left undone: a follow-up it was asked for, or the run it was in the middle of,
        by calling `start(trigger)` (which takes the lapsed lease over and marks the dead run
        abandoned). A run that was itself such a recovery is only marked abandoned, so a retrain
        that kills its process is not tried again forever. Says what it did, None if nothing."""
        state = lease_state(self.store, RETRAIN_LOCK)
        if state is None or state.holder is None or state.expires_at is None:
            return None
        if state.expires_at >= utcnow():
            return None
        dead = self.run_book.get(state.run_id) if state.run_id is not None else None
        about = f"run {dead.id}" if dead is not None else "a retrain"
        if state.pending or dead is None or not dead.trigger.startswith(RECOVERY):
            why = "a follow-up was pending" if state.pending else "it had not finished"
            trigger = f"{RECOVERY}: the process running {about} stopped; {why}"
            try:
                start(trigger)
            except RetrainInProgressError:
                return None  # another process took the lease over first
            log.warning("retraining lease lapsed (%s): %s", about, trigger)
            return trigger
        lease = Lease.take(self.store, RETRAIN_LOCK, 0.0, self.settings.lease_seconds)
        if lease is None:
            return None
        try:
            self.run_book.abandon_running(LAPSED)
        finally:
            lease.abandon()
        return f"{about} marked abandoned: its process stopped while recovering"

    def runs(self) -> list[TrainingRun]:
        return self.run_book.all()

    def run(self, run_id: int) -> TrainingRun | None:
        return self.run_book.get(run_id)

    def unlock(self) -> str:
        """Clear the retraining lease by hand (an operator's tool) and say what was cleared."""
        state = force_unlock(self.store, RETRAIN_LOCK)
        if state is None:
            return "The retraining lease was free: nothing to clear."
        abandoned = self.run_book.abandon_running(CLEARED)
        lapsed = state.expires_at is not None and state.expires_at < utcnow()
        return (
            f"Cleared the retraining lease taken {state.acquired_at:%Y-%m-%d %H:%M:%S} UTC"
            + (f" by run {state.run_id}" if state.run_id else "")
            + (
                " (it had already lapsed)"
                if lapsed
                else " (it was still being renewed: "
                "if that retrain is alive, it will notice and stop renewing)"
            )
            + f"; {abandoned} run(s) marked abandoned."
        )

    # ---- bootstrap ----------------------------------------------------------------------------

    def initialise(
        self, dataset: Path = BUNDLED_DATASET, progress: Progress | None = None
    ) -> list[str]:
        """Upgrade the schema and re-save the previous release's models safely; on an empty
        database store `dataset` (dated as documented) and train a first champion; replace a
        champion an earlier release trained (or one whose artefact is refused)."""
        messages = []
        before, after = self.store.create_schema()
        if before != after:
            messages.append(f"database schema upgraded from {before or 'empty'} to {after}")
        messages += self.registry.upgrade_artefacts()
        if self.store.max_batch_id() == 0:
            submission = self.submit(
                self.preview(dataset.read_bytes(), dataset.name, upload_date=BUNDLED_APPRAISED_ON),
                BUNDLED_UPLOADER,
                retrain=False,
            )
            result = submission.preview.result
            messages.append(
                f"stored {dataset.name}: {submission.stored:,} appraisals, "
                f"{result.n_rejected} rows rejected, "
                f"{submission.preview.result.notes['line'].nunique()} with measurements set "
                f"aside (batch {submission.batch_id})"
            )
        champion = self.registry.champion_version()
        info = self.registry.info(champion) if champion else None
        if info is not None and info.servable:
            try:
                self.registry.load(info.version)
            except ArtefactRefusedError as error:
                messages.append(f"champion v{info.version} cannot serve: {error}")
                info = None
        if (info is None or not info.servable) and self.store.count_appraisals() >= 50:
            outcome = self.retrain(trigger="init", progress=progress, wait_seconds=600, force=True)
            messages.append(f"trained model v{outcome.candidate_version}: {outcome.reason}")
        return messages
