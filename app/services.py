"""Per-process services shared by the REST API and the dashboard: the store, the champion kept
in memory, client keys and limits, quote records, readiness, and retrains run in background
threads (they outlive the request or page that started them, and stop cleanly at shutdown).

A serving process calls `start`: background threads keep the champion, the keys, the usage and
the quote records in step with the database, so answering a quote reads only memory.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass, field

import pandas as pd
from sqlalchemy.exc import SQLAlchemyError

from diamond_model.learning.loop import LearningLoop
from diamond_model.learning.outcomes import RetrainOutcome, RunTicket
from diamond_model.learning.registry import Registry
from diamond_model.learning.versions import Champion
from diamond_model.pricing.quote import Quote, quote_stone
from diamond_model.serving.champion import ChampionCache
from diamond_model.serving.keys import ClientKey, KeyRing, KeyStore
from diamond_model.serving.metering import (
    KEY_GUESSES,
    PERSON_GUESSES,
    SESSION_GUESSES,
    Attempts,
    Meter,
)
from diamond_model.serving.periodic import Periodic
from diamond_model.serving.quote_records import QuoteLog
from diamond_model.settings import Settings
from diamond_model.storage import idempotency
from diamond_model.storage.store import Store
from diamond_model.storage.tables import utcnow

log = logging.getLogger(__name__)


class NoModelError(RuntimeError):
    """No champion has been trained yet."""

    def __init__(self) -> None:
        super().__init__(
            "No price model is trained yet. Run `python -m diamond_model init` (or `make run`), "
            "or upload appraisals and start a retrain."
        )


class Readiness:
    """Can this process reach its database? Asked at most once per `every` seconds."""

    def __init__(self, store: Store, every: float = 1.0) -> None:
        self.store = store
        self.every = every
        self._lock = threading.Lock()
        self._checked = 0.0
        self.ok: bool | None = None
        self.detail = "not checked yet"

    def check(self) -> tuple[bool, str]:
        """The cached answer, refreshed by one database round trip when it is older than
        `every` (blocking: call it from a thread in async code)."""
        with self._lock:
            if time.monotonic() - self._checked >= self.every:
                try:
                    self.ok = self.store.ping()
                    self.detail = "database reachable"
                except (SQLAlchemyError, OSError) as error:
                    self.ok = False
                    self.detail = f"database unreachable: {type(error).__name__}"
                self._checked = time.monotonic()
            return bool(self.ok), self.detail


@dataclass
class Services:
    """What a serving process needs, created once per process."""

    settings: Settings
    pipeline: LearningLoop
    _threads: dict[int, threading.Thread] = field(default_factory=dict)
    _cancel: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.cache = ChampionCache(self.registry, explain=True)  # quotes come explained
        self.keys = KeyStore(self.store)
        self.ring = KeyRing(self.keys)
        self.meter = Meter(self.store)
        self.attempts = Attempts(self.store, KEY_GUESSES)  # wrong API keys, per address
        self.session_attempts = Attempts(self.store, SESSION_GUESSES)  # dashboard codes
        self.person_attempts = Attempts(self.store, PERSON_GUESSES)
        self.quotes = QuoteLog(self.store, self.settings.quote_retention_days)
        self.readiness = Readiness(self.store)
        # Forgets idempotency records past their 24 hours (a retry after that runs again).
        self.forgetter = Periodic(
            "idempotency-purge", 3600.0, lambda: idempotency.purge(self.store)
        )
        # Redoes a retrain or follow-up left undone by a process that died holding the lease.
        self.keeper = Periodic(
            "retrain-keeper",
            min(10.0, self.settings.lease_seconds / 2),
            lambda: self.pipeline.recover_lapsed(self.start_retrain),
        )

    @classmethod
    def create(cls, settings: Settings) -> Services:
        pipeline = LearningLoop.from_settings(settings)
        pipeline.store.create_schema()
        return cls(settings=settings, pipeline=pipeline)

    def start(self) -> None:
        """Keep the champion, keys, usage and quote records in step in the background."""
        self.cache.watch()
        self.readiness.check()
        self.ring.watch()
        self.meter.watch()
        self.quotes.watch()
        self.keeper.start()
        self.forgetter.start()

    @property
    def store(self) -> Store:
        return self.pipeline.store

    @property
    def registry(self) -> Registry:
        return self.pipeline.registry

    def champion(self) -> Champion:
        """The serving champion; raises NoModelError when there is none."""
        current = self.cache.get()
        if current is None:
            raise NoModelError()
        return current

    def latest_readings(self, count: int) -> pd.DataFrame:
        """The last `count` batches the serving model priced before training on them (live
        accuracy), oldest first: what Home and `GET /v1/model` show beside training figures."""
        batches = self.store.batches()
        return batches[batches["live"].notna()].tail(count)

    def quote(self, stone: dict[str, object], explain: bool = True) -> tuple[int, Quote]:
        version, model = self.champion()
        return version, quote_stone(model, stone, self.settings.interval_level, explain)

    def record(
        self, client: ClientKey | None, version: int, market: str, pairs: list[tuple[dict, dict]]
    ) -> list[str]:
        """Keep (stone, answer) pairs as quote records; returns their ids (None when records are
        switched off)."""
        if not self.settings.record_quotes:
            return [None] * len(pairs)  # type: ignore[list-item]
        now = utcnow()
        records = [
            {
                "id": str(uuid.uuid4()),
                "created_at": now,
                "key_id": None if client is None else client.id,
                "model_version": version,
                "market_period": market,
                "stone": stone,
                "answer": answer,
            }
            for stone, answer in pairs
        ]
        self.quotes.add(records)
        return [str(r["id"]) for r in records]

    # ---- background retrains ------------------------------------------------------------------

    def start_retrain(self, trigger: str, force: bool = False) -> int:
        """Begin a retrain (raises RetrainInProgressError if one runs) and finish it in a
        thread; the run id is what callers poll."""
        ticket = self.pipeline.begin(trigger)
        thread = threading.Thread(
            target=self._run, args=(ticket, force), name=f"retrain-{ticket.run_id}", daemon=True
        )
        self._threads[ticket.run_id] = thread
        thread.start()
        return ticket.run_id

    def _run(self, ticket: RunTicket, force: bool) -> RetrainOutcome | None:
        try:
            return self.pipeline.execute(ticket, force=force, cancel=self._cancel)
        except Exception:  # recorded on the run by the pipeline; a thread has no caller to tell
            log.exception("background retrain %d failed", ticket.run_id)
            return None
        except BaseException:  # cancelled at shutdown: recorded as abandoned by the pipeline
            return None

    def running(self, run_id: int) -> bool:
        thread = self._threads.get(run_id)
        return thread is not None and thread.is_alive()

    def wait_for_background(self, timeout: float = 180.0) -> None:
        """Join retrain threads (tests and orderly shutdown)."""
        for thread in list(self._threads.values()):
            thread.join(timeout)

    def close(self) -> None:
        """Stop retrains (recorded as abandoned, lease released) and flush what is in memory."""
        self._cancel.set()
        self.wait_for_background(30)
        self.keeper.close()
        self.forgetter.close()
        self.cache.close()
        self.ring.close()
        self.meter.close()
        self.quotes.close()
        self.pipeline.store.dispose()
