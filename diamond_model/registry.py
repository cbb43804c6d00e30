"""The model registry: versions with provenance, the champion pointer, promote and rollback, and the
per-process champion cache that keeps the database off the quoting path.

Versions are compared on one fixed reference set: the held-out appraisals of the earliest active
batch, each priced at its own month's market level, so the history compares like with like.
"""

from __future__ import annotations

import io
import logging
import math
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime

import joblib
import pandas as pd
from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from diamond_model.kinds import VersionStatus
from diamond_model.model import MODEL_FORMAT, PricingModel
from diamond_model.store import Store
from diamond_model.tables import Batch, Champion, ChampionEvent, ModelVersion, utcnow
from diamond_model.training import TrainingResult, evaluate, holdout_mask

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
                select(Champion.version, Champion.changed_at).where(Champion.id == 1)
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

    def reference_metrics(self, model: PricingModel, reference: pd.DataFrame) -> dict | None:
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
        reference: dict | None,
    ) -> int:
        """Insert a trained model (inside the caller's transaction); returns its version."""
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
            artefact=serialize(result.model),
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
            update(Champion).where(Champion.id == 1).values(version=version, changed_at=utcnow())
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
            raise RegistryError(
                f"Version {version} was trained by an earlier release (format {row.format}) and "
                "is kept for the record only; promote a later version or retrain."
            )
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
        with self.store.session() as session:
            row = self._servable(session, version)
            blob = session.scalar(
                select(ModelVersion.artefact).where(ModelVersion.version == row.version)
            )
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

    def champion_events(self) -> pd.DataFrame:
        with self.store.engine.connect() as connection:
            rows = connection.execute(
                select(
                    ChampionEvent.at, ChampionEvent.kind, ChampionEvent.version, ChampionEvent.note
                ).order_by(ChampionEvent.id)
            ).all()
        return pd.DataFrame(rows, columns=["at", "kind", "version", "note"])


# While the database stays away, the warning is repeated this often (not at every check).
WARN_EVERY_SECONDS = 60.0


class ChampionCache:
    """The champion model of this process, kept current without a database read per quote.

    `refresh` reads the one-row champion table and loads a newly promoted version. A serving
    process calls `watch`: a daemon thread refreshes every `interval` seconds (a one-row read,
    0.1 ms), so a promotion or rollback made by any process is served within that time plus the
    new model's loading (about 0.1 s): within a second. `get` only reads memory (one
    attribute read of a (version, model) pair, so a response never mixes two versions). When
    the database cannot be reached, the loaded model keeps serving and `healthy` says so.
    """

    def __init__(
        self, registry: Registry, interval: float = 0.25, keep: int = 3, explain: bool = False
    ) -> None:
        self.registry = registry
        self.explain = explain  # prepare explanations before a loaded model serves
        self.interval = interval
        self._lock = threading.Lock()
        # One refresh at a time: an overlapping one that read the row earlier would otherwise
        # finish last and put back an older champion, or clear an outage just recorded.
        self._refreshing = threading.Lock()
        self._current: tuple[int, PricingModel] | None = None
        self._checked = 0.0
        self._older: OrderedDict[int, PricingModel] = OrderedDict()
        self._keep = keep
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_error: str | None = None
        self._warned = 0.0

    @property
    def healthy(self) -> bool:
        return self.last_error is None

    @property
    def current(self) -> tuple[int, PricingModel] | None:
        """What is loaded now (memory only)."""
        return self._current

    def refresh(self) -> tuple[int, PricingModel] | None:
        """Read the champion row; load the model when it changed. Never raises for a database
        outage: the current model stays and `last_error` records why."""
        with self._refreshing:
            return self._refresh()

    def _refresh(self) -> tuple[int, PricingModel] | None:
        self._checked = time.monotonic()
        try:
            version, _ = self.registry.champion_stamp()
            current = self._current
            if version is not None and (current is None or current[0] != version):
                self._current = (version, self._load(version))
            elif version is None:
                self._current = None
            self.last_error = None
        except (SQLAlchemyError, OSError) as error:
            first = self.last_error is None
            self.last_error = f"{type(error).__name__}: {str(error).splitlines()[0][:200]}"
            if first or time.monotonic() - self._warned >= WARN_EVERY_SECONDS:
                self._warned = time.monotonic()
                log.warning("champion check failed, serving the loaded model: %s", self.last_error)
        except RegistryError as error:
            self.last_error = str(error)
        return self._current

    def _load(self, version: int) -> PricingModel:
        model = self.registry.load(version)
        return model.prepare_explanations() if self.explain else model

    def get(self) -> tuple[int, PricingModel] | None:
        """(version, model) of the champion, or None when no model is trained yet."""
        if self._thread is None and time.monotonic() - self._checked >= self.interval:
            return self.refresh()
        return self._current

    def version(self, version: int) -> PricingModel:
        """A given version (for reproducing an earlier quote): the champion, or loaded and kept
        among the last few asked for."""
        current = self._current
        if current is not None and current[0] == version:
            return current[1]
        with self._lock:
            if version in self._older:
                self._older.move_to_end(version)
                return self._older[version]
        if not self.registry.served(version):
            raise RegistryError(
                f"Version {version} never priced quotes, so there is nothing to reproduce with "
                "it; GET /v1/models lists the versions that served."
            )
        model = self._load(version)
        with self._lock:
            self._older[version] = model
            while len(self._older) > self._keep:
                self._older.popitem(last=False)
        return model

    def watch(self) -> None:
        """Start the background refresher (idempotent)."""
        if self._thread is not None:
            return
        self.refresh()
        self._thread = threading.Thread(target=self._loop, name="champion-watch", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.refresh()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
