"""One background job run every few seconds, for as long as the process serves: the champion
watch, the key ring, the meter and the quote log each hold one.

Nothing stops it but `close`: an action that raises is logged (at most once a minute, with the
traceback the first time) and tried again on the next tick, so a database outage or a bug in
one tick never leaves a process serving with a dead watcher.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

REPEAT_WARNING_SECONDS = 60.0


class Periodic:
    """Call `action` every `every` seconds on a daemon thread named `name`."""

    def __init__(self, name: str, every: float, action: Callable[[], object]) -> None:
        self.name = name
        self.every = every
        self.action = action
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._warned = 0.0
        self.failures = 0  # ticks that raised since the process started

    @property
    def running(self) -> bool:
        """Started and not closed."""
        return self._thread is not None

    @property
    def alive(self) -> bool:
        """Its thread is running now (false once closed, or if anything ever killed it)."""
        return self._thread is not None and self._thread.is_alive()

    def start(self, now: bool = False) -> None:
        """Start the thread (idempotent). The first tick runs one interval from now; with
        `now`, the action also runs once first, in the caller's thread (what it raises is the
        caller's to handle: a process should not start serving on a state it could not read)."""
        if self._thread is None:
            if now:
                self.action()
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            self.tick()

    def tick(self) -> None:
        """Run the action once; whatever it raises is logged, never passed on."""
        try:
            self.action()
        except Exception:
            self.failures += 1
            now = time.monotonic()
            if self.failures == 1:
                log.exception("%s: a tick failed; trying again every %.2f s", self.name, self.every)
                self._warned = now
            elif now - self._warned >= REPEAT_WARNING_SECONDS:
                log.warning("%s: still failing (%d ticks so far)", self.name, self.failures)
                self._warned = now

    def close(self, timeout: float = 5.0) -> None:
        """Stop the thread and wait for a tick in progress (at most `timeout` seconds)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)
            self._thread = None
