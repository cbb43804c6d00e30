"""The learning loop on SQLite and PostgreSQL: the gate follows a market move and refuses poison,
retrains are skipped when they would repeat themselves, promote and rollback, and the champion
reaches other processes."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import date

import numpy as np
import pandas as pd
import pytest

from diamond_model.enums import RunStatus, VersionStatus
from diamond_model.learning.loop import LearningLoop
from diamond_model.learning.outcomes import RetrainInProgressError
from diamond_model.learning.training import evaluate, holdout_mask
from diamond_model.learning.versions import RegistryError
from diamond_model.pricing.quote import quote_frame
from diamond_model.serving.champion import ChampionCache
from diamond_model.storage import lease
from diamond_model.storage.store import RETRAIN_LOCK
from diamond_model.storage.tables import TrainingRun
from tests.helpers import BUNDLED_STORED, csv_bytes, dated, repriced, shuffled, two_versions

JANUARY, MARCH, APRIL, MAY = date(2026, 1, 1), date(2026, 3, 1), date(2026, 4, 1), date(2026, 5, 1)


@pytest.mark.slow
def test_the_model_follows_a_market_move_and_refuses_a_poisoned_batch(
    pipeline: LearningLoop, appraisals: pd.DataFrame
) -> None:
    base, fresh = appraisals.iloc[:4000], appraisals.iloc[4000:].dropna(subset=["x", "y", "z"])
    pipeline.ingest(csv_bytes(dated(base, JANUARY)), "january.csv", "expert")
    assert pipeline.retrain().promoted

    march = pipeline.preview(csv_bytes(dated(repriced(base, 1.15, 1, 3000), MARCH)), "march.csv")
    assert march.live is not None and march.live.verdict == "consistent"
    words = " ".join(march.live.sentences())
    assert "% above what the current model (v1) quotes" in words
    assert 13.0 < march.live.level_pct < 17.0 and march.live.level_se_pct < 1.0
    assert "a market move that the next model will follow" in words
    pipeline.submit(march, "expert", retrain=False)
    pipeline.ingest(
        csv_bytes(dated(repriced(base, 1.15, 2, 3000), APRIL)), "april.csv", "expert", retrain=False
    )

    moved = pipeline.retrain()
    assert moved.promoted, moved.reason
    model = pipeline.registry.load(moved.candidate_version)
    assert model.market.latest_label == "2026-04"
    quotes = quote_frame(
        model, fresh.drop(columns=["price", "appraised_on"]), 0.9, explain_prices=False
    )
    new_level = 1.15 * fresh["price"].to_numpy()
    signed = np.median(np.array([q.price for q in quotes.quotes]) / new_level - 1)
    assert abs(signed) <= 0.04, f"median signed error {100 * signed:.1f} % against the new level"
    assert quotes.quotes[0].market.period == "2026-04"

    poisoned = pipeline.preview(csv_bytes(dated(shuffled(base, 3, 3000), MAY)), "may.csv")
    # the spread is read on the prices not flagged as suspects: still three times the usual
    assert poisoned.live.verdict == "too many suspects" and poisoned.live.spread_ratio > 3
    assert len(poisoned.live.suspects) > 0.5 * poisoned.live.n
    assert "the file as a whole looks wrong" in " ".join(poisoned.live.sentences())
    submission = pipeline.submit(poisoned, "expert", retrain=True)
    outcome = submission.outcome
    assert not outcome.promoted and "Withdraw them" in outcome.reason
    assert f"withdraw batch {submission.batch_id}" in outcome.reason
    after = quote_frame(
        pipeline.registry.load(pipeline.registry.champion_version()),
        fresh.drop(columns=["price", "appraised_on"]).iloc[:300],
        0.9,
        explain_prices=False,
    )
    moved_by = np.abs(
        np.array([q.price for q in after.quotes]) / np.array([q.price for q in quotes.quotes[:300]])
        - 1
    )
    assert moved_by.max() < 0.01, "quotes do not move after the poisoned batch"

    _, retraining = pipeline.set_withdrawn(submission.batch_id, True, retrain=True)
    assert retraining.outcome.status == RunStatus.SKIPPED, retraining.outcome.reason
    assert "no new appraisals since champion" in retraining.outcome.reason


def test_first_retrain_promotes_and_records_the_run(
    pipeline: LearningLoop, small_csv: bytes
) -> None:
    pipeline.ingest(small_csv, "a.csv", "tester")
    outcome = pipeline.retrain()
    assert outcome.promoted and outcome.status == RunStatus.PROMOTED
    assert pipeline.registry.champion_version() == outcome.candidate_version == 1
    run = pipeline.run(outcome.run_id)
    assert run.status == RunStatus.PROMOTED and run.finished_at is not None
    assert run.candidate_metrics["mape"] == pytest.approx(outcome.candidate_metrics["mape"])
    info = pipeline.registry.info(1)
    assert info.train_rows == 1200 and 0 < info.holdout_rows < 1200 and info.servable
    served, exam = pipeline.registry.load(1), pipeline.registry.exam(1)
    assert served.n_train == 1200, "the served model learned from every appraisal"
    assert exam.n_train == 1200 - info.holdout_rows, "its exam from all but the held-out ones"
    assert info.reference_metrics["n"] == info.holdout_rows, "batch 1's held-out rows"
    reference = pipeline.registry.reference_set()
    assert info.reference_metrics["mape"] == pytest.approx(
        evaluate(exam, reference, 0.9)["mape"]
    ), "the history is the exam's: its figures come from stones it never saw"
    assert evaluate(served, reference, 0.9)["mape"] < info.reference_metrics["mape"], (
        "the served model saw them"
    )
    assert info.max_batch_id == 1 and len(info.data_fingerprint) == 64
    assert outcome.headline == "v1 now prices every quote."


def test_the_gate_compares_the_versions_exams_never_a_model_with_what_it_saw(
    pipeline: LearningLoop, appraisals: pd.DataFrame
) -> None:
    """v1 serves a model fitted on all of batch 1, held-out rows included: graded on those rows it
    would look better than any candidate could. The gate grades both versions' exams (each recipe
    fitted without the held-out rows), stone by stone, on the same rows."""
    pipeline.ingest(csv_bytes(appraisals.iloc[:1200]), "a.csv", "tester")
    assert pipeline.retrain().promoted
    pipeline.ingest(csv_bytes(appraisals.iloc[1200:2400]), "b.csv", "tester")
    outcome = pipeline.retrain()
    assert outcome.promoted, outcome.reason
    stored = pipeline.store.appraisals()
    held = stored.loc[holdout_mask(stored, pipeline.settings.holdout_fraction)]
    known = held.loc[held["batch_id"] == 1]
    everywhere, knew = outcome.comparisons
    assert (everywhere.n, knew.n) == (len(held), len(known))
    registry = pipeline.registry
    assert everywhere.champion["mape"] == pytest.approx(
        evaluate(registry.exam(1), held, 0.9)["mape"]
    )
    assert everywhere.candidate["mape"] == pytest.approx(
        evaluate(registry.exam(2), held, 0.9)["mape"]
    )
    assert knew.champion["mape"] == pytest.approx(evaluate(registry.exam(1), known, 0.9)["mape"])
    in_sample = evaluate(registry.load(1), known, 0.9)["mape"]
    assert in_sample < 0.9 * knew.champion["mape"], (
        "the served v1 has seen these rows: its figure there is not an exam"
    )
    assert registry.load(2).n_train == len(stored)
    assert registry.exam(2).n_train == len(stored) - len(held)


def test_a_retrain_that_would_repeat_itself_is_skipped(
    pipeline: LearningLoop, appraisals: pd.DataFrame
) -> None:
    pipeline.ingest(csv_bytes(appraisals.iloc[:1200]), "a.csv", "tester")
    pipeline.retrain()
    assert pipeline.retrain().status == RunStatus.SKIPPED
    pipeline.ingest(csv_bytes(shuffled(appraisals.iloc[:1200], 5, 400)), "bad.csv", "tester")
    first = pipeline.retrain()
    assert first.status == RunStatus.REJECTED
    again = pipeline.retrain()
    assert again.status == RunStatus.SKIPPED
    assert f"run {first.run_id} already trained on exactly these appraisals" in again.reason
    assert len(pipeline.registry.versions()) == 2, "no identical rejected version every night"
    assert pipeline.retrain(force=True).status == RunStatus.REJECTED


def test_only_one_retrain_at_a_time(pipeline: LearningLoop, small_csv: bytes) -> None:
    pipeline.ingest(small_csv, "a.csv", "tester")
    token = lease.acquire(pipeline.store, RETRAIN_LOCK, 60)
    with pytest.raises(RetrainInProgressError, match="A retrain is already running since"):
        pipeline.retrain(wait_seconds=0.6)
    lease.release(pipeline.store, RETRAIN_LOCK, token)
    assert pipeline.retrain().promoted


def test_a_batch_stored_while_a_retrain_runs_gets_a_follow_up(
    pipeline: LearningLoop, appraisals: pd.DataFrame
) -> None:
    pipeline.ingest(csv_bytes(appraisals.iloc[:1200]), "a.csv", "tester")
    started, release = threading.Event(), threading.Event()

    def progress(message: str, fraction: float) -> None:
        if fraction >= 0.1 and not started.is_set():
            started.set()
            release.wait(60)

    outcomes = []
    worker = threading.Thread(target=lambda: outcomes.append(pipeline.retrain(progress=progress)))
    worker.start()
    assert started.wait(60)
    submission = pipeline.ingest(
        csv_bytes(appraisals.iloc[1200:2400]), "b.csv", "tester", retrain=True
    )
    assert "it will train once more with this data" in submission.retraining.note
    release.set()
    worker.join(120)
    outcome = outcomes[0]
    assert len(outcome.follow_ups) == 1
    assert outcome.follow_ups[0].status in (RunStatus.PROMOTED, RunStatus.REJECTED)
    last = pipeline.registry.info(outcome.last.candidate_version)
    assert last.max_batch_id == 2, "the follow-up trained on the batch stored meanwhile"
    assert lease.lease_state(pipeline.store, RETRAIN_LOCK).holder is None


def test_interrupted_retrain_leaves_nothing_half_done(
    pipeline: LearningLoop, small_csv: bytes
) -> None:
    pipeline.ingest(small_csv, "a.csv", "tester")

    class Interrupted(BaseException):
        """Stands in for Streamlit's StopException when a user clicks elsewhere."""

    def progress(message: str, fraction: float) -> None:
        if fraction >= 0.8:
            raise Interrupted()

    with pytest.raises(Interrupted):
        pipeline.retrain(progress=progress)
    assert pipeline.registry.champion_version() is None
    assert pipeline.registry.versions() == []
    assert pipeline.runs()[0].status == RunStatus.ABANDONED
    assert lease.lease_state(pipeline.store, RETRAIN_LOCK).holder is None, "no stuck lease"
    assert pipeline.retrain().promoted


def test_a_stop_between_recording_the_run_and_marking_the_lease_is_recorded(
    pipeline: LearningLoop, small_csv: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The window a CI run hit: SIGTERM landed right after the run was recorded as running."""
    from diamond_model.storage.lease import Lease

    pipeline.ingest(small_csv, "a.csv", "tester")

    def stopped(self: Lease, run_id: int) -> None:
        raise SystemExit(143)

    monkeypatch.setattr(Lease, "mark", stopped)
    with pytest.raises(SystemExit):
        pipeline.retrain()
    run = pipeline.runs()[0]
    assert run.status == RunStatus.ABANDONED and "the process was stopped" in run.message
    assert lease.lease_state(pipeline.store, RETRAIN_LOCK).holder is None, "no stuck lease"
    monkeypatch.undo()
    assert pipeline.retrain().promoted


def test_failed_retrain_is_recorded(pipeline: LearningLoop) -> None:
    from diamond_model.learning.training import NotEnoughDataError

    with pytest.raises(NotEnoughDataError, match="at least 50 appraisals"):
        pipeline.retrain()
    run: TrainingRun = pipeline.runs()[0]
    assert run.status == RunStatus.FAILED and "NotEnoughDataError" in run.message


def test_unlock_clears_a_stale_lease_and_says_what(
    pipeline: LearningLoop, small_csv: bytes
) -> None:
    pipeline.ingest(small_csv, "a.csv", "tester")
    assert pipeline.unlock() == "The retraining lease was free: nothing to clear."
    ticket = pipeline.begin("cli")
    ticket.lease.stop()  # as if the process had died: no heartbeat, no release
    message = pipeline.unlock()
    assert f"by run {ticket.run_id}" in message and "1 run(s) marked abandoned" in message
    assert pipeline.run(ticket.run_id).status == RunStatus.ABANDONED
    assert "cleared by an operator" in pipeline.run(ticket.run_id).message
    assert pipeline.retrain().promoted


def test_promote_and_rollback_switch_the_champion(
    pipeline: LearningLoop, appraisals: pd.DataFrame
) -> None:
    two_versions(pipeline, appraisals)
    assert pipeline.registry.rollback_target().version == 1
    pipeline.registry.promote(1)
    assert pipeline.registry.champion_version() == 1
    pipeline.registry.promote(2)
    assert pipeline.registry.rollback() == 1
    assert pipeline.registry.champion_version() == 1
    statuses = {v.version: v.status for v in pipeline.registry.versions()}
    assert statuses == {1: VersionStatus.CHAMPION, 2: VersionStatus.ARCHIVED}
    with pytest.raises(RegistryError, match="There is no model version 99; stored versions: 1, 2"):
        pipeline.registry.promote(99)


def test_rollback_needs_an_earlier_champion(pipeline: LearningLoop, small_csv: bytes) -> None:
    pipeline.ingest(small_csv, "a.csv", "tester")
    pipeline.retrain()
    with pytest.raises(RegistryError, match="no earlier champion"):
        pipeline.registry.rollback()


def test_versions_share_one_reference_set(pipeline: LearningLoop, appraisals: pd.DataFrame) -> None:
    two_versions(pipeline, appraisals)
    first, second = pipeline.registry.versions()
    assert first.reference_metrics["n"] == second.reference_metrics["n"] > 0
    assert second.metrics["n"] > first.metrics["n"], "the held-out set grows, the reference not"


def test_another_process_picks_up_a_new_champion_on_its_own(
    pipeline: LearningLoop, appraisals: pd.DataFrame
) -> None:
    two_versions(pipeline, appraisals)
    other = LearningLoop.from_settings(pipeline.settings)  # its own engine, like another process
    cache = ChampionCache(other.registry)
    cache.watch()
    try:
        assert cache.get().version == 2
        model_before = cache.get().model
        pipeline.registry.promote(1)
        deadline = time.monotonic() + 15  # it looks every second; this only catches "never"
        while cache.get().version != 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        version, model = cache.get()
        assert version == 1 and model is not model_before
        assert time.monotonic() < deadline
    finally:
        cache.close()
        other.store.dispose()


def test_overlapping_champion_checks_end_with_the_newest_reading(
    pipeline: LearningLoop, appraisals: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A check that read the champion row first must not finish last: it would put back the
    previous champion, or clear an outage a later check recorded (a CI run hit the latter)."""
    from sqlalchemy.exc import OperationalError

    two_versions(pipeline, appraisals)
    cache = ChampionCache(pipeline.registry)
    registry = cache.registry
    read_row = registry.champion_stamp
    gate = threading.Event()

    def overlap(late_reading: Callable[[], tuple]) -> None:
        def stamp() -> tuple:
            if threading.current_thread().name == "early":
                gate.wait(5)
                return (1, None)  # what the row said before the latest change
            return late_reading()

        gate.clear()
        monkeypatch.setattr(registry, "champion_stamp", stamp)
        early = threading.Thread(target=cache.refresh, name="early")
        early.start()
        time.sleep(0.1)  # the early check has read the row and is slow to finish
        late = threading.Thread(target=cache.refresh)
        late.start()
        late.join(0.5)
        gate.set()
        early.join(5)
        late.join(5)

    overlap(read_row)
    assert cache.current.version == 2 and cache.healthy

    def unreachable() -> tuple:
        raise OperationalError("SELECT", {}, Exception("connection refused"))

    overlap(unreachable)
    assert not cache.healthy and "connection refused" in cache.last_error


def test_pricing_keeps_serving_while_a_retrain_runs(
    pipeline: LearningLoop, appraisals: pd.DataFrame
) -> None:
    pipeline.ingest(csv_bytes(appraisals.iloc[:1500]), "a.csv", "tester")
    pipeline.retrain()
    pipeline.ingest(csv_bytes(appraisals.iloc[1500:3000]), "b.csv", "tester")
    cache = ChampionCache(pipeline.registry)
    started, served = threading.Event(), []

    def progress(message: str, fraction: float) -> None:
        if fraction >= 0.1 and not started.is_set():
            started.set()

    worker = threading.Thread(target=lambda: pipeline.retrain(progress=progress))
    worker.start()
    assert started.wait(30)
    while worker.is_alive():
        served.append(cache.get().version)
        time.sleep(0.02)
    worker.join()
    assert served and set(served) <= {1, 2}
    assert served[0] == 1, "the old champion served while the candidate trained"


def test_initialise_is_idempotent(pipeline: LearningLoop) -> None:
    first = pipeline.initialise()
    assert any(
        "4,989 appraisals, 10 rows rejected, 7 with measurements set aside" in m for m in first
    )
    assert pipeline.registry.champion_version() == 1
    stored = pipeline.store.appraisals()
    assert (stored["appraised_on"] == pd.Timestamp(JANUARY)).all(), "the documented date"
    assert pipeline.initialise() == []
    assert pipeline.store.count_appraisals() == BUNDLED_STORED


def test_the_gate_weighs_a_gap_against_the_noise_of_the_held_out_set() -> None:
    from diamond_model.learning.gate import Comparison, gate

    small_gap = Comparison(
        "all held-out appraisals",
        400,
        {"mape": 7.3, "mae": 303},
        {"mape": 7.1, "mae": 296},
        {"mape": 0.15, "mae": 5.0},
    )
    assert gate([small_gap], 0.02, [])[0], "within twice the paired standard error: noise"
    real_gap = Comparison(
        "all held-out appraisals",
        4000,
        {"mape": 7.6, "mae": 320},
        {"mape": 7.1, "mae": 296},
        {"mape": 0.05, "mae": 2.0},
    )
    ok, reason = gate([real_gap], 0.02, [])
    assert not ok and "average error on all held-out appraisals (4000): 7.60% vs 7.10%" in reason
