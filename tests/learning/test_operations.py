"""Crashes and concurrency with real processes, on SQLite and PostgreSQL: kill -9 and SIGTERM
during a retrain, and two processes storing and retraining at once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest

from app.services import Services
from diamond_model.enums import RunStatus
from diamond_model.learning.loop import LearningLoop
from diamond_model.storage import lease
from diamond_model.storage.lease import LEASE_SECONDS
from diamond_model.storage.store import RETRAIN_LOCK
from tests.helpers import ACCESS_CODE, csv_bytes, make_settings

LEASE = 4.0  # seconds: short, so the test waits little; the default is LEASE_SECONDS


def environment(url: str, folder: Path) -> dict[str, str]:
    return {
        **os.environ,
        "DIAMOND_DATABASE_URL": url,
        "DIAMOND_INSTANCE_DIR": str(folder),
        "DIAMOND_ACCESS_CODE": ACCESS_CODE,
        "DIAMOND_AUTO_RETRAIN": "true",
        "DIAMOND_LEASE_SECONDS": str(LEASE),
    }


def cli(url: str, folder: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "diamond_model", *args],
        env=environment(url, folder),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_running(pipeline: LearningLoop, timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = pipeline.runs()
        if runs and runs[0].status == RunStatus.RUNNING:
            return runs[0].id
        time.sleep(0.05)
    raise AssertionError("no retrain started")


def test_the_default_lease_lapses_within_a_minute() -> None:
    assert LEASE_SECONDS <= 60


@pytest.mark.slow
def test_kill_9_during_a_retrain_stops_blocking_once_the_lease_lapses(
    seeded_url: str, tmp_path: Path
) -> None:
    pipeline = LearningLoop.from_settings(make_settings(seeded_url, tmp_path, lease_seconds=LEASE))
    process = cli(seeded_url, tmp_path, "retrain", "--force")
    run_id = wait_for_running(pipeline)
    process.send_signal(signal.SIGKILL)
    process.wait(10)
    held = lease.lease_state(pipeline.store, RETRAIN_LOCK)
    assert held.holder is not None, "kill -9 released nothing"
    # Waiting longer than the lease is the bound: a lease that never lapsed would fail the wait.
    outcome = pipeline.retrain(wait_seconds=LEASE * 3, force=True)
    assert outcome.status in (RunStatus.PROMOTED, RunStatus.REJECTED)
    dead, after = pipeline.run(run_id), pipeline.run(outcome.run_id)
    assert dead.status == RunStatus.ABANDONED and "its lease lapsed" in dead.message
    # The order of events, in the database's own times: the dead holder's lease lapsed, then it
    # was marked abandoned and the new retrain started, on the next look after the lapse.
    assert held.expires_at <= dead.finished_at <= after.started_at
    assert after.started_at - held.expires_at < timedelta(seconds=LEASE)
    pipeline.store.dispose()


@pytest.mark.slow
def test_sigterm_during_a_retrain_records_it_and_releases_the_lease(
    seeded_url: str, tmp_path: Path
) -> None:
    pipeline = LearningLoop.from_settings(make_settings(seeded_url, tmp_path, lease_seconds=60))
    process = cli(seeded_url, tmp_path, "retrain", "--force")
    run_id = wait_for_running(pipeline)
    process.send_signal(signal.SIGTERM)
    assert process.wait(30) == 128 + signal.SIGTERM
    assert lease.lease_state(pipeline.store, RETRAIN_LOCK).holder is None, "released at once"
    run = pipeline.run(run_id)
    assert run.status == RunStatus.ABANDONED and "the process was stopped" in run.message
    pipeline.store.dispose()


@pytest.mark.slow
def test_two_processes_storing_and_retraining_end_with_a_champion_trained_on_every_batch(
    seeded_url: str, tmp_path: Path, appraisals: pd.DataFrame
) -> None:
    files = []
    for k, rows in enumerate((appraisals.iloc[2000:3000], appraisals.iloc[3000:4000])):
        path = tmp_path / f"batch{k}.csv"
        path.write_bytes(csv_bytes(rows))
        files.append(path)
    processes = [cli(seeded_url, tmp_path, "ingest", str(path)) for path in files]
    for process in processes:
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, err
    pipeline = LearningLoop.from_settings(make_settings(seeded_url, tmp_path))
    assert pipeline.store.max_batch_id() == 3
    assert lease.lease_state(pipeline.store, RETRAIN_LOCK).holder is None
    finished = [r for r in pipeline.runs() if r.status != RunStatus.SKIPPED]
    assert finished[0].max_batch_id == 3, "the last run trained on every stored batch"
    champion = pipeline.registry.info(pipeline.registry.champion_version())
    assert champion.max_batch_id == 3, [
        (r.id, r.status, r.trigger, r.message) for r in pipeline.runs()
    ]
    pipeline.store.dispose()


@pytest.fixture
def seeded_url(database_url: str, seeded_copy: Callable[[str], str]) -> str:
    return seeded_copy("sqlite" if database_url.startswith("sqlite") else "postgresql")


@pytest.mark.slow
def test_a_follow_up_survives_kill_9_of_the_lease_holder_and_trains_after_the_lease_lapses(
    seeded_url: str, tmp_path: Path, appraisals: pd.DataFrame
) -> None:
    services = Services.create(make_settings(seeded_url, tmp_path, lease_seconds=LEASE))
    pipeline = services.pipeline
    process = cli(seeded_url, tmp_path, "retrain", "--force")
    dead_id = wait_for_running(pipeline)
    preview = pipeline.preview(csv_bytes(appraisals.iloc[2000:2600]), "new.csv")
    submission = pipeline.submit(preview, "expert", retrain=True, start=services.start_retrain)
    assert "follow-up run" in submission.retraining.note
    assert lease.lease_state(pipeline.store, RETRAIN_LOCK).pending
    process.send_signal(signal.SIGKILL)
    process.wait(10)
    held = lease.lease_state(pipeline.store, RETRAIN_LOCK)

    services.keeper.start()  # what every API worker and dashboard process runs
    deadline = time.monotonic() + LEASE + 30
    recovered = None
    while recovered is None or recovered.status == RunStatus.RUNNING:
        assert time.monotonic() < deadline, [(r.id, r.status, r.trigger) for r in pipeline.runs()]
        time.sleep(0.2)
        recovered = next((r for r in pipeline.runs() if r.trigger.startswith("recovery")), None)
    services.close()

    assert recovered.status in (RunStatus.PROMOTED, RunStatus.REJECTED), recovered.message
    assert recovered.max_batch_id == submission.batch_id, "it trained on the new batch"
    assert "a follow-up was pending" in recovered.trigger
    dead = pipeline.run(dead_id)
    assert dead.status == RunStatus.ABANDONED and "its lease lapsed" in dead.message
    assert held.expires_at <= recovered.started_at, "taken over only once the lease lapsed"
    assert lease.lease_state(pipeline.store, RETRAIN_LOCK).holder is None
    assert [r.trigger for r in pipeline.runs()].count(recovered.trigger) == 1, "exactly once"
