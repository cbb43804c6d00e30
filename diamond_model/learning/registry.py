"""The model registry: versions with provenance, the champion pointer, promote and rollback.
(Each serving process keeps the champion in memory with `serving.champion.ChampionCache`.)

Versions are compared on one fixed reference set: the held-out appraisals of the earliest active
batch, each priced at its own month's market level by the version's exam (its recipe fitted
without them), so the history compares like with like and never grades a model on what it saw.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TypeVar

import pandas as pd
from sqlalchemy import case, select, update
from sqlalchemy.orm import Session

from diamond_model.enums import VersionStatus
from diamond_model.learning import monotonicity
from diamond_model.learning.training import TrainingResult, evaluate, holdout_mask
from diamond_model.learning.versions import (
    ArtefactRefusedError,
    GateOverrideError,
    RegistryError,
    VersionInfo,
    json_safe,
    read_artefact,
    version_info,
    withdrawn_batches,
)
from diamond_model.pricing import artefact
from diamond_model.pricing.model import LEGACY_FORMAT, MODEL_FORMAT, PricingModel
from diamond_model.storage import audit
from diamond_model.storage.store import Store
from diamond_model.storage.tables import (
    Batch,
    ChampionEvent,
    ChampionPointer,
    ModelVersion,
    TrainingRun,
    utcnow,
)
from diamond_model.words import sentence

log = logging.getLogger(__name__)
T = TypeVar("T")


class Registry:
    """Model versions stored in the same database as the appraisals."""

    def __init__(self, store: Store, holdout_fraction: float = 0.2, level: float = 0.9) -> None:
        self.store = store
        self.holdout_fraction = holdout_fraction
        self.level = level

    def champion_version(self) -> int | None:
        """The serving version (a single primary-key read)."""
        return self.champion_stamp()[0]

    def champion_stamp(self) -> tuple[int | None, datetime | None]:
        """(version, changed_at) of the champion row: what serving processes watch."""
        with self.store.engine.connect() as connection:
            row = connection.execute(
                select(ChampionPointer.version, ChampionPointer.changed_at).where(
                    ChampionPointer.id == 1
                )
            ).first()
        return (None, None) if row is None else (row[0], row[1])

    def reference_batches(self) -> list[int]:
        """The batch the reference set is drawn from (none when nothing is stored)."""
        with self.store.session() as session:
            first = session.scalar(
                select(Batch.id).where(Batch.withdrawn_at.is_(None)).order_by(Batch.id).limit(1)
            )
        return [] if first is None else [int(first)]

    def reference_set(self) -> pd.DataFrame:
        """The held-out appraisals of the earliest active batch: every version's common exam."""
        first = next(iter(self.reference_batches()), None)
        if first is None:
            return self.store.appraisals(batch_id=-1)
        rows = self.store.appraisals(batch_id=first)
        return rows.loc[holdout_mask(rows, self.holdout_fraction)]

    def reference_metrics(
        self, model: PricingModel, reference: pd.DataFrame
    ) -> dict[str, float | None] | None:
        if reference.empty:
            return None
        return json_safe(evaluate(model, reference, self.level))

    def add(
        self,
        session: Session,
        result: TrainingResult,
        status: VersionStatus,
        max_batch_id: int,
        run_id: int | None,
        reference: dict[str, float | None] | None,
        learned_from: list[int],
        judged_on: list[int],
    ) -> int:
        """Insert a trained model (inside the caller's transaction); returns its version."""
        blob, exam = artefact.write(result.model), artefact.write(result.exam)
        row = ModelVersion(
            algorithm=result.algorithm[:200],
            params=result.params,
            data_fingerprint=result.fingerprint,
            train_rows=result.n_train,
            holdout_rows=result.n_holdout,
            max_batch_id=max_batch_id,
            metrics=json_safe(result.metrics),
            reference_metrics=reference,
            status=status,
            training_seconds=result.seconds,
            run_id=run_id,
            format=MODEL_FORMAT,
            artefact=blob,
            artefact_sha256=artefact.digest(blob),
            exam_artefact=exam,
            exam_sha256=artefact.digest(exam),
            learned_from=learned_from,
            judged_on=judged_on,
            gate_refused=status == VersionStatus.REJECTED,
        )
        session.add(row)
        session.flush()
        return row.version

    def set_champion(self, session: Session, version: int, kind: str, note: str = "") -> None:
        """Point the champion at `version` (inside the caller's transaction)."""
        session.execute(
            update(ModelVersion)
            .where(ModelVersion.status == VersionStatus.CHAMPION)
            .values(
                status=case(
                    (ModelVersion.gate_refused, VersionStatus.REJECTED.value),
                    else_=VersionStatus.ARCHIVED.value,
                )
            )
        )
        session.execute(
            update(ModelVersion)
            .where(ModelVersion.version == version)
            .values(status=VersionStatus.CHAMPION)
        )
        session.execute(
            update(ChampionPointer)
            .where(ChampionPointer.id == 1)
            .values(version=version, changed_at=utcnow())
        )
        session.add(ChampionEvent(version=version, kind=kind, note=note))

    def _servable(self, session: Session, version: int) -> ModelVersion:
        row = session.get(ModelVersion, version)
        if row is None:
            known = ", ".join(
                str(v)
                for v in session.scalars(
                    select(ModelVersion.version).order_by(ModelVersion.version)
                )
            )
            raise RegistryError(
                f"There is no model version {version}; stored versions: {known or 'none'}."
            )
        reason = version_info(row, None, withdrawn_batches(session)).unservable_reason
        if reason is not None:
            raise ArtefactRefusedError(sentence(reason) + ".")
        return row

    def promote(
        self, version: int, note: str = "promoted by hand", override: str = "", by: str = "unknown"
    ) -> VersionInfo:
        """Make a servable stored version the champion. One the gate refused needs `override`:
        the reason it should serve anyway, recorded in the champion history."""
        self.prove_monotone(version)
        with self.store.session() as session, session.begin():
            row = self._servable(session, version)
            if row.gate_refused:
                if not override.strip():
                    raise GateOverrideError(
                        f"The gate refused v{version} when it was trained "
                        f"({self._refusal_words(session, row)}). To serve it anyway, give the "
                        "reason (it is recorded): the override box on the dashboard, "
                        "`promote VERSION --override REASON`, or the API's `override` field."
                    )
                note = f"{note}; gate overridden: {override.strip()[:400]}"
            self.set_champion(session, version, "promote", note)
            audit.record(session, by, "promote", f"v{version}", note)
        log.info("version %d is now champion", version)
        return self.info(version)  # type: ignore[return-value]

    def _refusal_words(self, session: Session, row: ModelVersion) -> str:
        run = session.get(TrainingRun, row.run_id) if row.run_id is not None else None
        return run.message if run is not None and run.message else "no reason was recorded"

    def fall_back(self, session: Session, reason: str) -> str | None:
        """If the champion learned from a withdrawn batch, serve the newest version that was
        served before and did not (inside the caller's transaction, so the withdrawal and the
        fall-back are one change); the sentence says what happened, None if nothing had to."""
        champion = session.scalar(select(ChampionPointer.version).where(ChampionPointer.id == 1))
        if champion is None:
            return None
        withdrawn = withdrawn_batches(session)
        current = session.get(ModelVersion, champion)
        if current is None or not set(current.learned_from or []) & withdrawn:
            return None
        served = set(session.scalars(select(ChampionEvent.version)).all())
        candidates = session.scalars(
            select(ModelVersion)
            .where(ModelVersion.version.in_(served), ModelVersion.version != champion)
            .order_by(ModelVersion.version.desc())
        ).all()
        for row in candidates:
            if version_info(row, None, withdrawn).servable and not row.gate_refused:
                self.set_champion(
                    session, row.version, "fallback", f"v{champion} learned from {reason}"
                )
                audit.record(
                    session,
                    audit.SYSTEM,
                    "fallback",
                    f"v{row.version}",
                    f"v{champion} learned from {reason}",
                )
                log.info("champion v%d learned from %s: v%d serves", champion, reason, row.version)
                return (
                    f"Champion v{champion} learned from {reason}: v{row.version}, which did not, "
                    "serves from now on."
                )
        return (
            f"Champion v{champion} learned from {reason}, and no earlier version that served "
            f"learned without it: v{champion} keeps serving until the retrain replaces it."
        )

    def history(self) -> list[int]:
        """Champion stack: promotions push, rollbacks pop; the last element is serving."""
        with self.store.session() as session:
            events = session.execute(
                select(ChampionEvent.kind, ChampionEvent.version).order_by(ChampionEvent.id)
            ).all()
        stack: list[int] = []
        for kind, version in events:
            if kind == "rollback":
                if stack:
                    stack.pop()
            elif not stack or stack[-1] != version:
                stack.append(version)
        return stack

    def rollback_target(self) -> VersionInfo | None:
        """The version a rollback would return to (the champion before the current one)."""
        stack = [v for v in self.history()]
        if len(stack) < 2:
            return None
        return self.info(stack[-2])

    def rollback(self, by: str = "unknown") -> int:
        """Return to the champion before the current one; returns the version now serving."""
        stack = self.history()
        if len(stack) < 2:
            raise RegistryError(
                "There is no earlier champion to roll back to. "
                "Use `promote VERSION` to serve a specific version."
            )
        target = stack[-2]
        self.prove_monotone(target)
        with self.store.session() as session, session.begin():
            self._servable(session, target)
            self.set_champion(session, target, "rollback", f"rolled back from v{stack[-1]}")
            audit.record(session, by, "rollback", f"v{target}", f"rolled back from v{stack[-1]}")
        log.info("rolled back from %d to %d", stack[-1], target)
        return target

    def served(self, version: int) -> bool:
        """Whether this version ever priced quotes (was champion at some point)."""
        with self.store.session() as session:
            return (
                session.scalar(
                    select(ChampionEvent.id).where(ChampionEvent.version == version).limit(1)
                )
                is not None
            )

    def prove_monotone(self, version: int) -> None:
        """Check a version trained before every candidate was checked (`learning.monotonicity`)
        on the stored appraisals, once, and record the figures with it: a version that prices a
        better grade lower is then refused by `_servable` like any unservable one."""
        with self.store.session() as session:
            row = session.get(ModelVersion, version)
            if row is None or row.format != MODEL_FORMAT or "monotone_checked" in row.metrics:
                return
        proof = monotonicity.check(self.load(version), self.store.appraisals())
        with self.store.session() as session, session.begin():
            row = session.get(ModelVersion, version)
            if row is not None:
                row.metrics = {**row.metrics, **proof.figures()}

    def load(self, version: int) -> PricingModel:
        """The stored model, checked against its recorded hash; never an old pickle."""
        with self.store.engine.connect() as connection:
            row = connection.execute(
                select(
                    ModelVersion.format, ModelVersion.artefact, ModelVersion.artefact_sha256
                ).where(ModelVersion.version == version)
            ).first()
        if row is None:
            with self.store.session() as session:
                self._servable(session, version)  # raises, naming the stored versions
            raise RegistryError(f"Version {version} is not stored.")
        return read_artefact(version, row[0], row[1], row[2])

    def exam(self, version: int) -> PricingModel:
        """The version's recipe fitted without the held-out appraisals: what is judged on them
        (a version from before two fits were kept was fitted so, and is its own exam)."""
        with self.store.engine.connect() as connection:
            row = connection.execute(
                select(
                    ModelVersion.format, ModelVersion.exam_artefact, ModelVersion.exam_sha256
                ).where(ModelVersion.version == version)
            ).first()
        if row is None or row[1] is None:
            return self.load(version)
        return read_artefact(version, row[0], row[1], row[2])

    def upgrade_artefacts(self) -> list[str]:
        """Re-save the previous release's pickled models (format 2) as this release's format,
        reading each with an allow-list of classes; one that names anything else stays
        refused. First-release models (format 1) stay as records: they lack what a quote needs."""
        with self.store.engine.connect() as connection:
            legacy = connection.scalars(
                select(ModelVersion.version)
                .where(ModelVersion.format == LEGACY_FORMAT)
                .order_by(ModelVersion.version)
            ).all()
        messages = []
        for version in legacy:
            with self.store.session() as session, session.begin():
                row = session.get(ModelVersion, version)
                if row is None or row.format != LEGACY_FORMAT:
                    continue
                try:
                    model = artefact.read_legacy(row.artefact)
                except artefact.ArtefactError as error:
                    log.error("model version %d not upgraded: %s", version, error)
                    messages.append(f"model v{version} not re-saved and not served: {error}")
                    continue
                blob = artefact.write(model)
                row.artefact, row.artefact_sha256, row.format = (
                    blob,
                    artefact.digest(blob),
                    MODEL_FORMAT,
                )
            messages.append(f"model v{version} re-saved in the safe format")
        return messages

    def info(self, version: int) -> VersionInfo | None:
        """One version's provenance and metrics (a single-row read, artefact not loaded)."""
        champion = self.champion_version()
        with self.store.session() as session:
            row = session.get(ModelVersion, version)
            return None if row is None else version_info(row, champion, withdrawn_batches(session))

    def versions(self) -> list[VersionInfo]:
        champion = self.champion_version()
        with self.store.session() as session:
            rows = session.scalars(select(ModelVersion).order_by(ModelVersion.version)).all()
            withdrawn = withdrawn_batches(session)
            return [version_info(row, champion, withdrawn) for row in rows]

    def champion_events(self) -> pd.DataFrame:
        with self.store.engine.connect() as connection:
            rows = connection.execute(
                select(
                    ChampionEvent.at, ChampionEvent.kind, ChampionEvent.version, ChampionEvent.note
                ).order_by(ChampionEvent.id)
            ).all()
        return pd.DataFrame(rows, columns=["at", "kind", "version", "note"])
