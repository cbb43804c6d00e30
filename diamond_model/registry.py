"""The model registry: versions with provenance, the champion pointer, promote and rollback.

Every process serving prices keeps a `ChampionCache`; before each quote it reads the one-row
champion table (a primary-key lookup), and reloads only when the version number changed. A model
promoted by the CLI, the dashboard or another API worker is therefore served on the next quote.
"""

from __future__ import annotations

import io
import logging
import math
import threading
from dataclasses import dataclass
from datetime import datetime

import joblib
import pandas as pd
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from diamond_model.store import Store
from diamond_model.tables import Champion, ChampionEvent, ModelVersion, utcnow
from diamond_model.training import PricingModel, TrainingResult

log = logging.getLogger(__name__)


class RegistryError(ValueError):
    """A registry request that cannot be carried out (unknown version, nothing to roll back to)."""


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
    calibration: dict[str, object]
    params: dict[str, object]
    status: str
    training_seconds: float
    is_champion: bool


def serialize(model: PricingModel) -> bytes:
    buffer = io.BytesIO()
    joblib.dump(model, buffer, compress=3)
    return buffer.getvalue()


def deserialize(blob: bytes) -> PricingModel:
    return joblib.load(io.BytesIO(blob))


def json_safe(values: dict[str, float]) -> dict[str, float | None]:
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
        calibration=row.calibration,
        params=row.params,
        status=row.status,
        training_seconds=row.training_seconds,
        is_champion=row.version == champion,
    )


class Registry:
    """Model versions stored in the same database as the appraisals."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def champion_version(self) -> int | None:
        """The serving version: a single primary-key read, cheap enough to do before every quote."""
        with self.store.engine.connect() as connection:
            return connection.execute(select(Champion.version).where(Champion.id == 1)).scalar()

    def add(
        self,
        session: Session,
        result: TrainingResult,
        status: str,
        max_batch_id: int,
        run_id: int | None,
    ) -> int:
        """Insert a trained model (inside the caller's transaction); returns its version."""
        row = ModelVersion(
            algorithm=result.algorithm,
            params=result.params,
            data_fingerprint=result.fingerprint,
            train_rows=result.n_train,
            holdout_rows=result.n_holdout,
            max_batch_id=max_batch_id,
            metrics=json_safe(result.metrics),
            calibration=result.calibration,
            status=status,
            training_seconds=result.seconds,
            run_id=run_id,
            artefact=serialize(result.model),
        )
        session.add(row)
        session.flush()
        return row.version

    def set_champion(self, session: Session, version: int, kind: str, note: str = "") -> None:
        """Point the champion at `version` (inside the caller's transaction)."""
        session.execute(
            update(ModelVersion).where(ModelVersion.status == "champion").values(status="archived")
        )
        session.execute(
            update(ModelVersion).where(ModelVersion.version == version).values(status="champion")
        )
        session.execute(
            update(Champion).where(Champion.id == 1).values(version=version, changed_at=utcnow())
        )
        session.add(ChampionEvent(version=version, kind=kind, note=note))

    def promote(self, version: int, note: str = "promoted by hand") -> None:
        """Make any stored version the champion."""
        with self.store.session() as session, session.begin():
            if session.get(ModelVersion, version) is None:
                known = ", ".join(
                    str(v)
                    for v in session.scalars(
                        select(ModelVersion.version).order_by(ModelVersion.version)
                    )
                )
                raise RegistryError(
                    f"There is no model version {version}; stored versions: {known or 'none'}."
                )
            self.set_champion(session, version, "promote", note)
        log.info("version %d is now champion", version)

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
            self.set_champion(session, target, "rollback", f"rolled back from {stack[-1]}")
        log.info("rolled back from %d to %d", stack[-1], target)
        return target

    def load(self, version: int) -> PricingModel:
        with self.store.session() as session:
            blob = session.scalar(
                select(ModelVersion.artefact).where(ModelVersion.version == version)
            )
        if blob is None:
            raise RegistryError(f"There is no model version {version}.")
        return deserialize(blob)

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

    def versions_frame(self) -> pd.DataFrame:
        """One row per version with its headline metrics, for tables and charts."""
        rows = []
        for v in self.versions():
            rows.append(
                {
                    "version": v.version,
                    "created_at": v.created_at,
                    "status": v.status,
                    "champion": v.is_champion,
                    "train_rows": v.train_rows,
                    "holdout_rows": v.holdout_rows,
                    **{k: v.metrics.get(k) for k in ("mape", "mae", "rmse", "r2", "coverage")},
                }
            )
        columns = ["version", "created_at", "status", "champion", "train_rows", "holdout_rows"]
        return pd.DataFrame(rows, columns=[*columns, "mape", "mae", "rmse", "r2", "coverage"])


class ChampionCache:
    """Per-process cache of the champion model, refreshed when the champion version changes."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._lock = threading.Lock()
        self._current: tuple[int, PricingModel] | None = None

    def get(self) -> tuple[int, PricingModel] | None:
        """(version, model) of the current champion, or None when no model is trained yet."""
        version = self.registry.champion_version()
        if version is None:
            return None
        current = self._current
        if current is None or current[0] != version:
            with self._lock:
                current = self._current
                if current is None or current[0] != version:
                    current = (version, self.registry.load(version))
                    self._current = current
        return current
