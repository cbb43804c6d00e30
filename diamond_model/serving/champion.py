"""The champion of this serving process, kept in memory and current without a database read per
quote, plus the pinned versions clients ask for by number."""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict

from sqlalchemy.exc import SQLAlchemyError

from diamond_model.learning.registry import Registry
from diamond_model.learning.versions import ArtefactRefusedError, Champion, RegistryError
from diamond_model.pricing.model import PricingModel
from diamond_model.serving.periodic import Periodic
from diamond_model.words import clause

log = logging.getLogger(__name__)


# While the database stays away or a champion is refused, the warning is repeated this often;
# a refused champion is also read again this often (its row may have been repaired).
WARN_EVERY_SECONDS = 60.0


class ChampionCache:
    """The champion model of this process, kept current without a database read per quote.

    `refresh` reads the one-row champion table and loads a newly promoted version. A serving
    process calls `watch`: a daemon thread refreshes every `interval` seconds (a one-row read,
    0.1 ms), so a promotion or rollback made by any process is served within that time plus the
    new model's loading (about 0.1 s): within a second. `get` only reads memory (one
    attribute read of one `Champion` value, so a response never mixes two versions).

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
        self._current: Champion | None = None
        self._checked = 0.0
        self._older: OrderedDict[int, PricingModel] = OrderedDict()
        self._keep = keep
        self._watch = Periodic("champion-watch", interval, self.refresh)
        self.last_error: str | None = None  # the database could not be read
        self.refused: str | None = None  # the champion's artefact could not be loaded
        self._refused_at: dict[int, tuple[float, str]] = {}
        self._warned = 0.0

    @property
    def healthy(self) -> bool:
        return self.last_error is None and self.refused is None

    @property
    def watching(self) -> bool:
        """The background refresher is alive."""
        return self._watch.alive

    @property
    def problem(self) -> str | None:
        """Why this process is degraded, in words (None when it serves the champion)."""
        return self.last_error or self.refused

    @property
    def current(self) -> Champion | None:
        """What is loaded now (memory only)."""
        return self._current

    def refresh(self) -> Champion | None:
        """Read the champion row; load the model when it changed. Never raises: the loaded
        model stays and `problem` records why it could not be replaced."""
        with self._refreshing:
            return self._refresh()

    def _warn(self, message: str, first: bool) -> None:
        if first or time.monotonic() - self._warned >= WARN_EVERY_SECONDS:
            self._warned = time.monotonic()
            log.warning(message)

    def _refresh(self) -> Champion | None:
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
        elif current is None or current.version != version:
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
            serving = f"v{self._current.version}" if self._current else "no model"
            self.refused = f"champion {clause(reason)} Serving {serving}."
            first = refused is None
            self._refused_at[version] = (time.monotonic(), self.refused)
            self._warn(self.refused, first)
            return
        self._refused_at.pop(version, None)
        self._current, self.refused = Champion(version, model), None

    def _load(self, version: int) -> PricingModel:
        model = self.registry.load(version)
        return model.prepare_explanations() if self.explain else model

    def get(self) -> Champion | None:
        """The champion (version and model), or None when no model is trained yet."""
        if not self._watch.running and time.monotonic() - self._checked >= self.interval:
            return self.refresh()
        return self._current

    def _kept(self, version: int) -> PricingModel | None:
        current = self._current
        if current is not None and current.version == version:
            return current.model
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
        """Start the background refresher (idempotent); the champion is read at once."""
        self._watch.start(now=True)

    def close(self) -> None:
        self._watch.close()
