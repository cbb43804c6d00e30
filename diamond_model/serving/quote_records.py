"""Quote records: every quote's inputs and answer, its model version and market level, kept for
the configured retention so a client can fetch or reproduce it, and traffic can be monitored.

Quotes are queued in memory and written in batches by a background thread (one INSERT of many
rows a second), so recording costs a quote an append to a list. A record is readable from the
worker that gave it at once, and from every worker after the next flush (about a second).
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import SQLAlchemyError

from diamond_model.serving.periodic import Periodic
from diamond_model.storage.store import Store
from diamond_model.storage.tables import QuoteRecord, utcnow

log = logging.getLogger(__name__)

FLUSH_SECONDS = 1.0
MAX_PENDING = 200_000  # beyond this (a long database outage) the oldest unsaved records go
PURGE_EVERY = timedelta(hours=1)


class QuoteLog:
    """This process's quote records: pending ones in memory, the rest in the database."""

    def __init__(
        self, store: Store, retention_days: int, flush_every: float = FLUSH_SECONDS
    ) -> None:
        self.store = store
        self.retention = timedelta(days=retention_days)
        self.flush_every = flush_every
        self._lock = threading.Lock()
        self._pending: dict[str, dict[str, object]] = {}
        self._purged = datetime.min
        self._watch = Periodic("quote-log", flush_every, self.flush)

    def add(self, records: list[dict[str, object]]) -> None:
        with self._lock:
            for record in records:
                self._pending[str(record["id"])] = record
            while len(self._pending) > MAX_PENDING:
                self._pending.pop(next(iter(self._pending)))

    def get(self, quote_id: str) -> dict[str, object] | None:
        with self._lock:
            pending = self._pending.get(quote_id)
        if pending is not None:
            return pending
        with self.store.session() as session:
            row = session.get(QuoteRecord, quote_id)
        if row is None or row.created_at < utcnow() - self.retention:
            return None
        return {c.name: getattr(row, c.name) for c in QuoteRecord.__table__.columns}

    def flush(self) -> None:
        with self._lock:
            pending = list(self._pending.values())
        if pending:
            try:
                with self.store.session() as session, session.begin():
                    session.execute(insert(QuoteRecord), pending)
            except SQLAlchemyError as error:
                log.warning("%d quote records not saved yet: %s", len(pending), error)
                return
            with self._lock:
                for record in pending:
                    self._pending.pop(str(record["id"]), None)
        now = utcnow()
        if now - self._purged > PURGE_EVERY:
            self._purged = now
            try:
                with self.store.session() as session, session.begin():
                    session.execute(
                        delete(QuoteRecord).where(QuoteRecord.created_at < now - self.retention)
                    )
            except SQLAlchemyError as error:
                log.warning("quote records not purged: %s", error)

    def count(self) -> int:
        with self.store.session() as session:
            from sqlalchemy import func

            return int(session.scalar(select(func.count()).select_from(QuoteRecord)) or 0)

    def watch(self) -> None:
        """Write pending records every `flush_every` seconds in the background (idempotent)."""
        self._watch.start()

    def close(self) -> None:
        self._watch.close()
        self.flush()
