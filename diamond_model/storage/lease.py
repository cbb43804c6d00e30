"""A database lease with a heartbeat: one retrain at a time across every process and machine.

The holder renews the lease four times per lease period (45 s by default); a holder that dies
(kill -9, power cut) stops renewing and its lease lapses within that period, so nothing stays
blocked for long.
`release` lets go only if no other process asked for one more run meanwhile (`pending`).
The functions are the lease's SQL (one row per name in `locks`); `Lease` is a held lease.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from datetime import timedelta

from sqlalchemy import update
from sqlalchemy.exc import SQLAlchemyError

from diamond_model.storage.store import Store, rowcount
from diamond_model.storage.tables import Lock, utcnow

log = logging.getLogger(__name__)

LEASE_SECONDS = 45.0
BEATS_PER_LEASE = 4


def acquire(store: Store, name: str, seconds: float, run_id: int | None = None) -> str | None:
    """Take the named lease if free or expired; returns the holder token, or None."""
    token = uuid.uuid4().hex
    now = utcnow()
    with store.session() as session, session.begin():
        result = session.execute(
            update(Lock)
            .where(Lock.name == name)
            .where((Lock.holder.is_(None)) | (Lock.expires_at < now))
            .values(
                holder=token,
                acquired_at=now,
                expires_at=now + timedelta(seconds=seconds),
                pending=False,
                run_id=run_id,
            )
        )
    return token if rowcount(result) == 1 else None


def renew(store: Store, name: str, token: str, seconds: float, run_id: int | None = None) -> bool:
    """The holder's heartbeat: push the expiry forward; False if the lease was lost."""
    values: dict[str, object] = {"expires_at": utcnow() + timedelta(seconds=seconds)}
    if run_id is not None:
        values["run_id"] = run_id
    with store.session() as session, session.begin():
        result = session.execute(
            update(Lock).where(Lock.name == name, Lock.holder == token).values(**values)
        )
    return rowcount(result) == 1


def release(store: Store, name: str, token: str) -> bool:
    """Let go unless someone asked for one more run meanwhile; True when released.

    When `pending` was set, it is cleared and the lease kept: the caller runs again."""
    with store.session() as session, session.begin():
        released = rowcount(
            session.execute(
                update(Lock)
                .where(Lock.name == name, Lock.holder == token, Lock.pending.is_(False))
                .values(holder=None, expires_at=None, run_id=None)
            )
        )
        if released:
            return True
        still_mine = rowcount(
            session.execute(
                update(Lock).where(Lock.name == name, Lock.holder == token).values(pending=False)
            )
        )
    return not still_mine


def force_release(store: Store, name: str, token: str) -> None:
    """Let go whatever was requested (the run failed or was interrupted)."""
    with store.session() as session, session.begin():
        session.execute(
            update(Lock)
            .where(Lock.name == name, Lock.holder == token)
            .values(holder=None, expires_at=None, pending=False, run_id=None)
        )


def request_follow_up(store: Store, name: str) -> bool:
    """Ask the current holder to run once more before letting go; False if nobody holds it."""
    with store.session() as session, session.begin():
        result = session.execute(
            update(Lock)
            .where(Lock.name == name, Lock.holder.is_not(None), Lock.expires_at >= utcnow())
            .values(pending=True)
        )
        return rowcount(result) == 1


def force_unlock(store: Store, name: str) -> Lock | None:
    """Clear the lease whoever holds it; returns what it was."""
    with store.session() as session, session.begin():
        before = session.get(Lock, name)
        if before is None or before.holder is None:
            return None
        state = Lock(
            name=before.name,
            holder=before.holder,
            acquired_at=before.acquired_at,
            expires_at=before.expires_at,
            pending=before.pending,
            run_id=before.run_id,
        )
        before.holder, before.expires_at, before.pending, before.run_id = (
            None,
            None,
            False,
            None,
        )
    return state


def lease_state(store: Store, name: str) -> Lock | None:
    with store.session() as session:
        return session.get(Lock, name)


class Lease:
    """The named lease while this process holds it."""

    def __init__(
        self,
        store: Store,
        name: str,
        token: str,
        seconds: float = LEASE_SECONDS,
    ) -> None:
        self.store = store
        self.name = name
        self.token = token
        self.seconds = seconds
        self.run_id: int | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._beat, args=(seconds / BEATS_PER_LEASE,), name=f"lease-{name}", daemon=True
        )
        self._thread.start()

    @classmethod
    def take(
        cls, store: Store, name: str, wait_seconds: float = 0.0, seconds: float = LEASE_SECONDS
    ) -> Lease | None:
        """The lease, waiting up to `wait_seconds` for it; None if someone else keeps it."""
        deadline = time.monotonic() + wait_seconds
        while True:
            token = acquire(store, name, seconds)
            if token is not None:
                return cls(store, name, token, seconds)
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.5)

    def _beat(self, every: float) -> None:
        while not self._stop.wait(every):
            try:
                if not renew(self.store, self.name, self.token, self.seconds, self.run_id):
                    log.error("lease %s was taken over; this process no longer holds it", self.name)
                    return
            except SQLAlchemyError as error:  # the next beat tries again; the lease may lapse
                log.warning("lease %s heartbeat failed: %s", self.name, error)

    def mark(self, run_id: int) -> None:
        """Record which run holds the lease (shown by `unlock`)."""
        self.run_id = run_id
        renew(self.store, self.name, self.token, self.seconds, run_id)

    def release(self) -> bool:
        """Let go; False when a follow-up was requested (the lease is still held)."""
        released = release(self.store, self.name, self.token)
        if released:
            self.stop()
        return released

    def stop(self) -> None:
        """Stop the heartbeat (the lease lapses on its own if not released)."""
        self._stop.set()

    def abandon(self) -> None:
        """Release whatever was requested: used when the run fails or is interrupted."""
        self.stop()
        force_release(self.store, self.name, self.token)
