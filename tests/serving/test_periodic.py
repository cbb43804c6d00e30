"""The one background worker behind the champion watch, the key ring, the meter and the quote
log: nothing an action raises stops it, and it says so once rather than every tick."""

from __future__ import annotations

import logging
import threading

import pytest

from diamond_model.serving.periodic import Periodic


def test_a_tick_that_raises_is_logged_once_and_the_worker_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls = 0
    recovered = threading.Event()

    def flaky() -> None:
        nonlocal calls
        calls += 1
        if calls <= 5:
            raise RuntimeError(f"database away (tick {calls})")
        recovered.set()

    worker = Periodic("flaky", 0.01, flaky)
    with caplog.at_level(logging.WARNING, logger="diamond_model.serving.periodic"):
        worker.start()
        worker.start()  # idempotent: still one thread
        try:
            assert recovered.wait(10), "the worker stopped after a failing tick"
            assert worker.alive
        finally:
            worker.close()
    assert worker.failures == 5
    failures = [r for r in caplog.records if r.name == "diamond_model.serving.periodic"]
    assert len(failures) == 1 and "flaky: a tick failed" in failures[0].getMessage()
    assert failures[0].exc_info is not None, "the first failure carries its traceback"
    assert not worker.running and not worker.alive
    assert sum(t.name == "flaky" for t in threading.enumerate()) == 0


def test_close_waits_for_the_tick_in_progress() -> None:
    started, finished = threading.Event(), threading.Event()

    def slow() -> None:
        started.set()
        finished.wait(0.2)
        finished.set()

    worker = Periodic("slow", 0.01, slow)
    worker.start()
    assert started.wait(10)
    worker.close()
    assert finished.is_set(), "close returned while a tick was still running"
