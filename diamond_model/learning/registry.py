"""The model registry: versions with provenance, the champion pointer, promote and rollback, and the
per-process champion cache that keeps the database off the quoting path.

Versions are compared on one fixed reference set: the held-out appraisals of the earliest active
batch, each priced at its own month's market level, so the history compares like with like.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime

import pandas as pd
from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from diamond_model.kinds import VersionStatus
from diamond_model.learning.training import TrainingResult, evaluate, holdout_mask
from diamond_model.pricing import artefact
from diamond_model.pricing.model import LEGACY_FORMAT, MODEL_FORMAT, PricingModel
from diamond_model.storage.store import Store
from diamond_model.storage.tables import Batch, Champion, ChampionEvent, ModelVersion, utcnow

log = logging.getLogger(__name__)


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
    raise ArtefactRefusedError(reason[0].upper() + reason[1:] + ".")


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
            reason = _refusal(version, row.format, b"", None) or ""
            raise ArtefactRefusedError(reason[0].upper() + reason[1:] + ".")
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


# While the database stays away or a champion is refused, the warning is repeated this often;
# a refused champion is also read again this often (its row may have been repaired).
WARN_EVERY_SECONDS = 60.0


class ChampionCache:
    """The champion model of this process, kept current without a database read per quote.

    `refresh` reads the one-row champion table and loads a newly promoted version. A serving
    process calls `watch`: a daemon thread refreshes every `interval` seconds (a one-row read,
    0.1 ms), so a promotion or rollback made by any process is served within that time plus the
    new model's loading (about 0.1 s): within a second. `get` only reads memory (one
    attribute read of a (version, model) pair, so a response never mixes two versions).

    Nothing stops the watcher: when the database cannot be reached, or the new champion's
    artefact is refused (an old pickle, changed bytes, unreadable) or fails to load for any
    reason, the last good model keeps serving, `problem` says why (readiness reports it), the
    warning is logged once a minute, and a later promotion is applied as usual.

    Pinned versions (`version`) are loaded one at a time under a lock, so clients asking for
    several at once cost one load each, not one per request, and kept in a small LRU cache.
    """

    def __init__(
        self, registry: Registry, interval: float = 0.25, keep: int = 4, explain: bool = False
    ) -> None:
        self.registry = registry
        self.explain = explain  # prepare explanations before a loaded model serves
        self.interval = interval
        self._lock = threading.Lock()
        self._loading = threading.Lock()  # one pinned load at a time in this process
        # One refresh at a time: an overlapping one that read the row earlier would otherwise
        # finish last and put back an older champion, or clear an outage just recorded.
        self._refreshing = threading.Lock()
        self._current: tuple[int, PricingModel] | None = None
        self._checked = 0.0
        self._older: OrderedDict[int, PricingModel] = OrderedDict()
        self._keep = keep
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_error: str | None = None  # the database could not be read
        self.refused: str | None = None  # the champion's artefact could not be loaded
        self._refused_at: dict[int, tuple[float, str]] = {}
        self._warned = 0.0

    @property
    def healthy(self) -> bool:
        return self.last_error is None and self.refused is None

    @property
    def problem(self) -> str | None:
        """Why this process is degraded, in words (None when it serves the champion)."""
        return self.last_error or self.refused

    @property
    def current(self) -> tuple[int, PricingModel] | None:
        """What is loaded now (memory only)."""
        return self._current

    def refresh(self) -> tuple[int, PricingModel] | None:
        """Read the champion row; load the model when it changed. Never raises: the loaded
        model stays and `problem` records why it could not be replaced."""
        with self._refreshing:
            return self._refresh()

    def _warn(self, message: str, first: bool) -> None:
        if first or time.monotonic() - self._warned >= WARN_EVERY_SECONDS:
            self._warned = time.monotonic()
            log.warning(message)

    def _refresh(self) -> tuple[int, PricingModel] | None:
        self._checked = time.monotonic()
        try:
            version, _ = self.registry.champion_stamp()
        except (SQLAlchemyError, OSError) as error:
            first = self.last_error is None
            self.last_error = f"{type(error).__name__}: {str(error).splitlines()[0][:200]}"
            self._warn(f"champion check failed, serving the loaded model: {self.last_error}", first)
            return self._current
        self.last_error = None
        current = self._current
        if version is None:
            self._current, self.refused = None, None
        elif current is None or current[0] != version:
            self._try_load(version)
        else:
            self.refused = None
        return self._current

    def _try_load(self, version: int) -> None:
        refused = self._refused_at.get(version)
        if refused is not None and time.monotonic() - refused[0] < WARN_EVERY_SECONDS:
            self.refused = refused[1]
            return
        try:
            model = self._load(version)
        except Exception as error:  # any failure: the last good model must keep serving
            if isinstance(error, SQLAlchemyError | OSError):
                reason = f"{type(error).__name__}: {str(error).splitlines()[0][:200]}"
            elif isinstance(error, ArtefactRefusedError):
                reason = str(error)
            else:
                log.exception("loading champion v%d failed", version)
                reason = f"version {version} could not be loaded ({type(error).__name__})"
            serving = f"v{self._current[0]}" if self._current else "no model"
            self.refused = f"champion {reason[0].lower() + reason[1:]} Serving {serving}."
            first = refused is None
            self._refused_at[version] = (time.monotonic(), self.refused)
            self._warn(self.refused, first)
            return
        self._refused_at.pop(version, None)
        self._current, self.refused = (version, model), None

    def _load(self, version: int) -> PricingModel:
        model = self.registry.load(version)
        return model.prepare_explanations() if self.explain else model

    def get(self) -> tuple[int, PricingModel] | None:
        """(version, model) of the champion, or None when no model is trained yet."""
        if self._thread is None and time.monotonic() - self._checked >= self.interval:
            return self.refresh()
        return self._current

    def _kept(self, version: int) -> PricingModel | None:
        current = self._current
        if current is not None and current[0] == version:
            return current[1]
        with self._lock:
            if version in self._older:
                self._older.move_to_end(version)
                return self._older[version]
        return None

    def version(self, version: int) -> PricingModel:
        """A given version (for reproducing an earlier quote): the champion, or loaded once and
        kept among the last few asked for. RegistryError when it never served (404), and
        ArtefactRefusedError when its artefact is refused (409)."""
        kept = self._kept(version)
        if kept is not None:
            return kept
        with self._loading:
            kept = self._kept(version)  # loaded by the request we waited for
            if kept is not None:
                return kept
            refused = self._refused_at.get(version)
            if refused is not None and time.monotonic() - refused[0] < WARN_EVERY_SECONDS:
                raise ArtefactRefusedError(refused[1])
            if not self.registry.served(version):
                raise RegistryError(
                    f"Version {version} never priced quotes, so there is nothing to reproduce "
                    "with it; GET /v1/models lists the versions that served."
                )
            try:
                model = self._load(version)
            except ArtefactRefusedError as error:
                self._refused_at[version] = (time.monotonic(), str(error))
                raise
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
            try:
                self.refresh()
            except Exception:  # refresh catches what it expects; the thread must outlive the rest
                log.exception("champion watcher: unexpected failure, watching on")

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
