"""A database lease with a heartbeat: one retrain at a time across every process and machine.

The holder renews the lease four times per lease period (45 s by default); a holder that dies
(kill -9, power cut) stops renewing and its lease lapses within that period, so nothing stays
blocked for long.
`release` lets go only if no other process asked for one more run meanwhile (`pending`).
"""

from __future__ import annotations

import logging
import threading
import time

from sqlalchemy.exc import SQLAlchemyError

from diamond_model.storage.store import Store

log = logging.getLogger(__name__)

LEASE_SECONDS = 45.0
BEATS_PER_LEASE = 4


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
            token = store.acquire_lease(name, seconds)
            if token is not None:
                return cls(store, name, token, seconds)
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.5)

    def _beat(self, every: float) -> None:
        while not self._stop.wait(every):
            try:
                if not self.store.renew_lease(self.name, self.token, self.seconds, self.run_id):
                    log.error("lease %s was taken over; this process no longer holds it", self.name)
                    return
            except SQLAlchemyError as error:  # the next beat tries again; the lease may lapse
                log.warning("lease %s heartbeat failed: %s", self.name, error)

    def mark(self, run_id: int) -> None:
        """Record which run holds the lease (shown by `unlock`)."""
        self.run_id = run_id
        self.store.renew_lease(self.name, self.token, self.seconds, run_id)

    def release(self) -> bool:
        """Let go; False when a follow-up was requested (the lease is still held)."""
        released = self.store.release_lease(self.name, self.token)
        if released:
            self.stop()
        return released

    def stop(self) -> None:
        """Stop the heartbeat (the lease lapses on its own if not released)."""
        self._stop.set()

    def abandon(self) -> None:
        """Release whatever was requested: used when the run fails or is interrupted."""
        self.stop()
        self.store.force_release(self.name, self.token)
