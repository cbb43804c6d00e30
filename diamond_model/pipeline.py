"""Automated retraining: one retrain at a time, a fair champion/candidate gate, every run recorded.

Fairness of the gate: a row is held out by the hash of its content, so the champion never trained
on the held-out stones either. The candidate must be no worse (within the tolerance) both on all
held-out appraisals and on the held-out appraisals the champion already knew about, so a batch of
corrupted prices cannot buy a promotion by also poisoning the evaluation data.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from sqlalchemy import select, update

from diamond_model.registry import ChampionCache, Registry, json_safe
from diamond_model.settings import Settings
from diamond_model.store import RETRAIN_LOCK, IngestReport, Store
from diamond_model.tables import ModelVersion, TrainingRun, utcnow
from diamond_model.training import PricingModel, evaluate, fingerprint, holdout_mask, train

log = logging.getLogger(__name__)

Progress = Callable[[str, float], None]
BUNDLED_DATASET = Path(__file__).resolve().parents[1] / "datasets" / "diamonds" / "diamonds.csv"
FIRST_MODEL_MAX_MAPE = 50.0


class RetrainInProgressError(RuntimeError):
    """Another retrain holds the lock."""


@dataclass(frozen=True)
class RunTicket:
    """A started run: its id and the lock token that `execute` releases."""

    run_id: int
    token: str


@dataclass(frozen=True)
class Comparison:
    """Candidate and champion on one evaluation set."""

    name: str
    n: int
    candidate: dict[str, float]
    champion: dict[str, float]


@dataclass(frozen=True)
class RetrainOutcome:
    """What a retrain did and why."""

    run_id: int
    status: str
    promoted: bool
    reason: str
    candidate_version: int | None = None
    champion_version: int | None = None
    candidate_metrics: dict[str, float] | None = None
    champion_metrics: dict[str, float] | None = None
    comparisons: list[Comparison] = field(default_factory=list)
    seconds: float = 0.0


def gate(comparisons: list[Comparison], tolerance: float) -> tuple[bool, str]:
    """Promote only if the candidate is not worse than the champion beyond `tolerance` anywhere."""
    failures, summary = [], []
    for comparison in comparisons:
        for metric, unit in (("mape", "%"), ("mae", "$")):
            cand, champ = comparison.candidate[metric], comparison.champion[metric]
            shown = (
                f"{cand:.2f}{unit} vs {champ:.2f}{unit}"
                if unit == "%"
                else f"${cand:,.0f} vs ${champ:,.0f}"
            )
            if not math.isfinite(cand) or cand > champ * (1 + tolerance):
                failures.append(f"{metric.upper()} on {comparison.name} ({comparison.n}): {shown}")
            elif metric == "mape":
                summary.append(f"MAPE on {comparison.name} ({comparison.n}): {shown}")
    if failures:
        return False, (
            "not promoted: the candidate is worse than the champion beyond the "
            f"{100 * tolerance:g}% tolerance — " + "; ".join(failures)
        )
    return True, "promoted: candidate not worse than the champion — " + "; ".join(summary)


class Pipeline:
    """Ingest, retrain and bootstrap, over one store and its registry."""

    def __init__(self, store: Store, registry: Registry, settings: Settings) -> None:
        self.store = store
        self.registry = registry
        self.settings = settings

    @classmethod
    def from_settings(cls, settings: Settings) -> Pipeline:
        store = Store(
            settings.resolved_database_url,
            max_upload_bytes=settings.max_upload_bytes,
            max_rows=settings.max_upload_rows,
        )
        return cls(store, Registry(store), settings)

    def cache(self) -> ChampionCache:
        return ChampionCache(self.registry)

    # ---- ingest -------------------------------------------------------------------------------

    def ingest(
        self, data: bytes, filename: str, uploaded_by: str, retrain: bool | None = None
    ) -> tuple[IngestReport, RetrainOutcome | None]:
        """Store a batch, then retrain if configured (and if the batch added any appraisal)."""
        report = self.store.ingest(data, filename, uploaded_by)
        should = self.settings.auto_retrain if retrain is None else retrain
        if not should or report.rows_accepted == 0:
            return report, None
        try:
            outcome = self.retrain(trigger=f"batch {report.batch_id}")
        except RetrainInProgressError as error:
            log.warning("batch %d stored; retrain not started: %s", report.batch_id, error)
            return report, None
        return report, outcome

    # ---- retrain ------------------------------------------------------------------------------

    def _acquire(self, wait_seconds: float) -> str:
        deadline = time.monotonic() + wait_seconds
        while True:
            token = self.store.acquire_lock(RETRAIN_LOCK, self.settings.retrain_lock_seconds)
            if token is not None:
                return token
            if time.monotonic() >= deadline:
                state = self.store.lock_state(RETRAIN_LOCK)
                since = f" since {state.acquired_at:%Y-%m-%d %H:%M:%S} UTC" if state else ""
                raise RetrainInProgressError(
                    f"A retrain is already running{since}. Wait for it to finish "
                    "(its result appears in the training runs), then try again."
                )
            time.sleep(0.5)

    def begin(self, trigger: str = "manual", wait_seconds: float = 0.0) -> RunTicket:
        """Take the retrain lock and record a run; `execute` must follow (or the lock expires)."""
        token = self._acquire(wait_seconds)
        try:
            with self.store.session() as session, session.begin():
                # We hold the lock, so any run still marked running died with its process.
                session.execute(
                    update(TrainingRun)
                    .where(TrainingRun.status == "running")
                    .values(
                        status="abandoned",
                        finished_at=utcnow(),
                        message="the process running it stopped before it finished",
                    )
                )
                run = TrainingRun(status="running", trigger=trigger)
                session.add(run)
                session.flush()
                run_id = run.id
        except BaseException:
            self.store.release_lock(RETRAIN_LOCK, token)
            raise
        return RunTicket(run_id=run_id, token=token)

    def execute(
        self, ticket: RunTicket, progress: Progress | None = None, force: bool = False
    ) -> RetrainOutcome:
        """Carry out a begun run; always records its end and releases the lock."""
        notify = progress or (lambda _message, _fraction: None)
        started = time.perf_counter()
        try:
            outcome = self._retrain(ticket.run_id, notify, started, force)
        except BaseException as error:  # also Streamlit's StopException and KeyboardInterrupt
            interrupted = not isinstance(error, Exception)
            self._finish(
                ticket.run_id,
                status="abandoned" if interrupted else "failed",
                message="interrupted" if interrupted else f"{type(error).__name__}: {error}",
            )
            raise
        finally:
            self.store.release_lock(RETRAIN_LOCK, ticket.token)
        notify("done", 1.0)
        return outcome

    def retrain(
        self,
        trigger: str = "manual",
        wait_seconds: float = 0.0,
        progress: Progress | None = None,
        force: bool = False,
    ) -> RetrainOutcome:
        """Train a candidate on all stored appraisals and promote it if it passes the gate."""
        return self.execute(self.begin(trigger, wait_seconds), progress, force)

    def _finish(self, run_id: int, status: str, message: str, **values: object) -> None:
        with self.store.session() as session, session.begin():
            session.execute(
                update(TrainingRun)
                .where(TrainingRun.id == run_id)
                .values(status=status, message=message, finished_at=utcnow(), **values)
            )

    def _retrain(
        self, run_id: int, notify: Progress, started: float, force: bool
    ) -> RetrainOutcome:
        notify("loading appraisals", 0.05)
        appraisals = self.store.appraisals()
        max_batch = int(appraisals["batch_id"].max()) if len(appraisals) else 0
        champion_version = self.registry.champion_version()
        champion_row = self._version_row(champion_version)
        if (
            not force
            and champion_row is not None
            and champion_row.data_fingerprint == fingerprint(appraisals)
        ):
            reason = f"skipped: no new appraisals since champion v{champion_version} was trained"
            self._finish(run_id, "skipped", reason, champion_version=champion_version)
            return RetrainOutcome(run_id, "skipped", False, reason, None, champion_version)

        notify(f"training a candidate on {len(appraisals):,} appraisals", 0.1)
        result = train(appraisals, self.settings.interval_level, self.settings.holdout_fraction)
        notify("comparing the candidate with the champion", 0.8)
        comparisons = self._compare(appraisals, result.model, champion_version, champion_row)
        if champion_version is None:
            ok = (
                math.isfinite(result.metrics["mape"])
                and result.metrics["mape"] < FIRST_MODEL_MAX_MAPE
            )
            reason = (
                f"promoted: first model, held-out MAPE {result.metrics['mape']:.2f}%"
                if ok
                else f"not promoted: first model's held-out MAPE {result.metrics['mape']:.1f}% "
                f"is above the {FIRST_MODEL_MAX_MAPE:g}% sanity limit"
            )
        else:
            ok, reason = gate(comparisons, self.settings.promotion_tolerance)

        notify("saving", 0.9)
        status = "promoted" if ok else "rejected"
        champion_metrics = comparisons[0].champion if comparisons else None
        with self.store.session() as session, session.begin():
            version = self.registry.add(
                session, result, "candidate" if ok else "rejected", max_batch, run_id
            )
            if ok:
                self.registry.set_champion(session, version, "promote", f"run {run_id}")
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

    def _version_row(self, version: int | None) -> ModelVersion | None:
        if version is None:
            return None
        with self.store.session() as session:
            return session.get(ModelVersion, version)

    def _compare(
        self,
        appraisals: pd.DataFrame,
        candidate: PricingModel,
        champion_version: int | None,
        champion_row: ModelVersion | None,
    ) -> list[Comparison]:
        if champion_version is None or champion_row is None:
            return []
        champion = self.registry.load(champion_version)
        level = self.settings.interval_level
        held_out = appraisals.loc[holdout_mask(appraisals, self.settings.holdout_fraction)]
        sets = [("all held-out appraisals", held_out)]
        known = held_out.loc[held_out["batch_id"] <= champion_row.max_batch_id]
        if 0 < len(known) < len(held_out):
            sets.append(("held-out appraisals the champion knew", known))
        return [
            Comparison(
                name, len(rows), evaluate(candidate, rows, level), evaluate(champion, rows, level)
            )
            for name, rows in sets
            if len(rows)
        ]

    # ---- runs ---------------------------------------------------------------------------------

    def runs(self) -> list[TrainingRun]:
        with self.store.session() as session:
            return list(session.scalars(select(TrainingRun).order_by(TrainingRun.id.desc())))

    def run(self, run_id: int) -> TrainingRun | None:
        with self.store.session() as session:
            return session.get(TrainingRun, run_id)

    # ---- bootstrap ----------------------------------------------------------------------------

    def initialise(
        self, dataset: Path = BUNDLED_DATASET, progress: Progress | None = None
    ) -> list[str]:
        """Create the schema; on an empty database ingest `dataset` and train a first champion."""
        messages = []
        self.store.create_schema()
        if self.store.max_batch_id() == 0:
            report = self.store.ingest(dataset.read_bytes(), dataset.name, "bundled dataset")
            messages.append(
                f"ingested {dataset.name}: {report.rows_accepted} accepted, "
                f"{report.rows_rejected} rejected (batch {report.batch_id})"
            )
        if self.registry.champion_version() is None and self.store.count_appraisals() >= 50:
            outcome = self.retrain(trigger="init", progress=progress, wait_seconds=600)
            messages.append(f"trained model v{outcome.candidate_version}: {outcome.reason}")
        return messages
