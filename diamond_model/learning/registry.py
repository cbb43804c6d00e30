"""The model registry: versions with provenance, the champion pointer, promote and rollback.
(Each serving process keeps the champion in memory with `serving.champion.ChampionCache`.)

Versions are compared on one fixed reference set: the held-out appraisals of the earliest active
batch, each priced at its own month's market level, so the history compares like with like.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple, TypeVar

import pandas as pd
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from diamond_model.enums import VersionStatus
from diamond_model.learning.training import TrainingResult, evaluate, holdout_mask
from diamond_model.pricing import artefact
from diamond_model.pricing.model import LEGACY_FORMAT, MODEL_FORMAT, PricingModel
from diamond_model.storage.store import Store
from diamond_model.storage.tables import Batch, ChampionEvent, ChampionPointer, ModelVersion, utcnow
from diamond_model.words import sentence

log = logging.getLogger(__name__)
T = TypeVar("T")


class Champion(NamedTuple):
    """The model that prices quotes, with its version: one value, so a response never pairs a
    version with another version's model."""

    version: int
    model: PricingModel


class RegistryError(ValueError):
    """A registry request that cannot be carried out (unknown version, nothing to roll back to)."""


class ArtefactRefusedError(RegistryError):
    """A stored model that will not be served: an old pickle, changed bytes, or unreadable."""


@dataclass(frozen=True)
class VersionInfo:
    """A model version without its artefact."""

    version: int
    created_at: datetime
    algorithm: str
    train_rows: int
    holdout_rows: int
    max_batch_id: int
    data_fingerprint: str
    metrics: dict[str, float]
    reference_metrics: dict[str, float] | None
    params: dict[str, object]
    status: str
    training_seconds: float
    run_id: int | None
    format: int
    is_champion: bool

    @property
    def servable(self) -> bool:
        return self.format == MODEL_FORMAT


def _refusal(version: int, fmt: int, blob: bytes | None, sha256: str | None) -> str | None:
    """Why a stored version cannot be served, checked on its bytes before any is parsed."""
    if fmt == LEGACY_FORMAT:
        return (
            f"version {version} is stored as a pickle by the previous release; "
            "`python -m diamond_model init` re-saves it safely"
        )
    if fmt != MODEL_FORMAT:
        return (
            f"version {version} was trained by the first release (format {fmt}) and is kept "
            "for the record only; promote a later version or retrain"
        )
    if blob is None:
        return f"version {version} has no stored model"
    return None


def read_artefact(version: int, fmt: int, blob: bytes | None, sha256: str | None) -> PricingModel:
    """The model of one stored version, or ArtefactRefusedError saying why not (logged)."""
    reason = _refusal(version, fmt, blob, sha256)
    if reason is None:
        try:
            return artefact.read(blob, sha256)  # type: ignore[arg-type]
        except artefact.ArtefactError as error:
            reason = f"version {version} is refused: {error}"
    log.error("model %s", reason)
    raise ArtefactRefusedError(sentence(reason) + ".")


def json_safe(values: Mapping[str, T]) -> dict[str, T | None]:
    """Metrics with NaN/inf replaced by None: PostgreSQL's JSON refuses NaN."""
    return {
        k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in values.items()
    }


def _info(row: ModelVersion, champion: int | None) -> VersionInfo:
    return VersionInfo(
        version=row.version,
        created_at=row.created_at,
        algorithm=row.algorithm,
        train_rows=row.train_rows,
        holdout_rows=row.holdout_rows,
        max_batch_id=row.max_batch_id,
        data_fingerprint=row.data_fingerprint,
        metrics=row.metrics,
        reference_metrics=row.reference_metrics,
        params=row.params,
        status=row.status,
        training_seconds=row.training_seconds,
        run_id=row.run_id,
        format=row.format,
        is_champion=row.version == champion,
    )


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

    def reference_set(self) -> pd.DataFrame:
        """The held-out appraisals of the earliest active batch: every version's common exam."""
        with self.store.session() as session:
            first = session.scalar(
                select(Batch.id).where(Batch.withdrawn_at.is_(None)).order_by(Batch.id).limit(1)
            )
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
    ) -> int:
        """Insert a trained model (inside the caller's transaction); returns its version."""
        blob = artefact.write(result.model)
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
        )
        session.add(row)
        session.flush()
        return row.version

    def set_champion(self, session: Session, version: int, kind: str, note: str = "") -> None:
        """Point the champion at `version` (inside the caller's transaction)."""
        session.execute(
            update(ModelVersion)
            .where(ModelVersion.status == VersionStatus.CHAMPION)
            .values(status=VersionStatus.ARCHIVED)
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
        if row.format != MODEL_FORMAT:
            reason = _refusal(version, row.format, b"", None) or ""
            raise ArtefactRefusedError(sentence(reason) + ".")
        return row

    def promote(self, version: int, note: str = "promoted by hand") -> VersionInfo:
        """Make any servable stored version the champion."""
        with self.store.session() as session, session.begin():
            self._servable(session, version)
            self.set_champion(session, version, "promote", note)
        log.info("version %d is now champion", version)
        return self.info(version)  # type: ignore[return-value]

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

    def rollback(self) -> int:
        """Return to the champion before the current one; returns the version now serving."""
        stack = self.history()
        if len(stack) < 2:
            raise RegistryError(
                "There is no earlier champion to roll back to. "
                "Use `promote VERSION` to serve a specific version."
            )
        target = stack[-2]
        with self.store.session() as session, session.begin():
            self._servable(session, target)
            self.set_champion(session, target, "rollback", f"rolled back from v{stack[-1]}")
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
            return None if row is None else _info(row, champion)

    def versions(self) -> list[VersionInfo]:
        champion = self.champion_version()
        with self.store.session() as session:
            rows = session.scalars(select(ModelVersion).order_by(ModelVersion.version)).all()
            return [_info(row, champion) for row in rows]

    def champion_events(self) -> pd.DataFrame:
        with self.store.engine.connect() as connection:
            rows = connection.execute(
                select(
                    ChampionEvent.at, ChampionEvent.kind, ChampionEvent.version, ChampionEvent.note
                ).order_by(ChampionEvent.id)
            ).all()
        return pd.DataFrame(rows, columns=["at", "kind", "version", "note"])
