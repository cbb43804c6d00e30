"""Automated retraining on SQLite and PostgreSQL: gate, skip, lock, promote, rollback, pick-up."""

from __future__ import annotations

import threading
import time

import numpy as np
import pandas as pd
import pytest

from diamond_model.pipeline import Pipeline, RetrainInProgressError
from diamond_model.registry import RegistryError
from diamond_model.store import RETRAIN_LOCK
from diamond_model.tables import TrainingRun


def shuffled_prices(appraisals: pd.DataFrame, rows: int, seed: int = 1) -> bytes:
    """Real stones with their prices shuffled (carat nudged so no row duplicates a stored one)."""
    rng = np.random.default_rng(seed)
    corrupted = appraisals.iloc[:rows].copy()
    corrupted["price"] = rng.permutation(corrupted["price"].to_numpy())
    corrupted["carat"] = corrupted["carat"] + 0.001
    return corrupted.to_csv(index=False).encode()


def two_versions(pipeline: Pipeline, appraisals: pd.DataFrame) -> None:
    """Two batches, a model after each: v2 (more data) is the champion."""
    pipeline.store.ingest(appraisals.iloc[:1200].to_csv(index=False).encode(), "a.csv")
    pipeline.retrain()
    pipeline.store.ingest(appraisals.iloc[1200:2400].to_csv(index=False).encode(), "b.csv")
    assert pipeline.retrain().promoted


def test_first_retrain_promotes_and_records_the_run(pipeline: Pipeline, small_csv: bytes) -> None:
    pipeline.store.ingest(small_csv, "a.csv")
    outcome = pipeline.retrain()
    assert outcome.promoted and outcome.status == "promoted"
    assert pipeline.registry.champion_version() == outcome.candidate_version == 1
    run = pipeline.run(outcome.run_id)
    assert run.status == "promoted" and run.finished_at is not None
    assert run.candidate_metrics["mape"] == pytest.approx(outcome.candidate_metrics["mape"])
    info = pipeline.registry.info(1)
    assert info.train_rows + info.holdout_rows == 1200
    assert info.max_batch_id == 1 and len(info.data_fingerprint) == 64


def test_retrain_without_new_data_is_skipped(pipeline: Pipeline, small_csv: bytes) -> None:
    pipeline.store.ingest(small_csv, "a.csv")
    pipeline.retrain()
    outcome = pipeline.retrain()
    assert outcome.status == "skipped" and not outcome.promoted
    assert len(pipeline.registry.versions()) == 1


def test_candidate_trained_on_shuffled_prices_is_not_promoted(
    pipeline: Pipeline, appraisals: pd.DataFrame
) -> None:
    pipeline.store.ingest(appraisals.iloc[:2000].to_csv(index=False).encode(), "good.csv")
    assert pipeline.retrain().promoted
    report, outcome = pipeline.ingest(
        shuffled_prices(appraisals, 2000), "corrupted.csv", "tester", retrain=True
    )
    assert report.rows_accepted == 2000
    assert not outcome.promoted and outcome.status == "rejected"
    assert "not promoted" in outcome.reason
    assert pipeline.registry.champion_version() == 1
    known = outcome.comparisons[-1]
    assert known.name == "held-out appraisals the champion knew"
    assert known.candidate["mape"] > 2 * known.champion["mape"]
    assert [v.status for v in pipeline.registry.versions()] == ["champion", "rejected"]


def test_good_new_data_is_promoted_automatically(
    pipeline: Pipeline, appraisals: pd.DataFrame
) -> None:
    pipeline.settings.auto_retrain = True
    pipeline.store.ingest(appraisals.iloc[:1500].to_csv(index=False).encode(), "first.csv")
    pipeline.retrain()
    _, outcome = pipeline.ingest(
        appraisals.iloc[1500:3500].to_csv(index=False).encode(), "second.csv", "tester"
    )
    assert outcome is not None, "ingest triggered a retrain by itself"
    assert outcome.promoted, outcome.reason
    assert pipeline.registry.champion_version() == 2


def test_only_one_retrain_at_a_time(pipeline: Pipeline, small_csv: bytes) -> None:
    pipeline.store.ingest(small_csv, "a.csv")
    token = pipeline.store.acquire_lock(RETRAIN_LOCK, 60)
    with pytest.raises(RetrainInProgressError, match="A retrain is already running since"):
        pipeline.retrain(wait_seconds=0.6)
    pipeline.store.release_lock(RETRAIN_LOCK, token)
    assert pipeline.retrain().promoted


def test_interrupted_retrain_leaves_nothing_half_done(pipeline: Pipeline, small_csv: bytes) -> None:
    pipeline.store.ingest(small_csv, "a.csv")

    class Interrupted(BaseException):
        """Stands in for Streamlit's StopException when a user clicks elsewhere."""

    def progress(message: str, fraction: float) -> None:
        if fraction >= 0.8:
            raise Interrupted()

    with pytest.raises(Interrupted):
        pipeline.retrain(progress=progress)
    assert pipeline.registry.champion_version() is None
    assert pipeline.registry.versions() == []
    assert pipeline.runs()[0].status == "abandoned"
    assert pipeline.store.lock_state(RETRAIN_LOCK).holder is None, "no stuck lock"
    assert pipeline.retrain().promoted


def test_failed_retrain_is_recorded(pipeline: Pipeline) -> None:
    from diamond_model.training import NotEnoughDataError

    with pytest.raises(NotEnoughDataError, match="at least 50 appraisals"):
        pipeline.retrain()
    run: TrainingRun = pipeline.runs()[0]
    assert run.status == "failed" and "NotEnoughDataError" in run.message


def test_promote_and_rollback_switch_the_champion(
    pipeline: Pipeline, appraisals: pd.DataFrame
) -> None:
    two_versions(pipeline, appraisals)
    pipeline.registry.promote(1)
    assert pipeline.registry.champion_version() == 1
    pipeline.registry.promote(2)
    assert pipeline.registry.rollback() == 1
    assert pipeline.registry.champion_version() == 1
    with pytest.raises(RegistryError, match="There is no model version 99; stored versions: 1, 2"):
        pipeline.registry.promote(99)


def test_rollback_needs_an_earlier_champion(pipeline: Pipeline, small_csv: bytes) -> None:
    pipeline.store.ingest(small_csv, "a.csv")
    pipeline.retrain()
    with pytest.raises(RegistryError, match="no earlier champion"):
        pipeline.registry.rollback()


def test_another_process_picks_up_a_new_champion_without_restart(
    pipeline: Pipeline, appraisals: pd.DataFrame
) -> None:
    two_versions(pipeline, appraisals)
    other = Pipeline.from_settings(pipeline.settings)  # its own engine, like another process
    cache = other.cache()
    assert cache.get()[0] == 2
    model_before = cache.get()[1]
    pipeline.registry.promote(1)
    version, model = cache.get()
    assert version == 1 and model is not model_before
    other.store.dispose()


def test_pricing_keeps_serving_while_a_retrain_runs(
    pipeline: Pipeline, appraisals: pd.DataFrame
) -> None:
    pipeline.store.ingest(appraisals.iloc[:1500].to_csv(index=False).encode(), "a.csv")
    pipeline.retrain()
    pipeline.store.ingest(appraisals.iloc[1500:3000].to_csv(index=False).encode(), "b.csv")
    cache = pipeline.cache()
    started, served = threading.Event(), []

    def progress(message: str, fraction: float) -> None:
        if fraction >= 0.1 and not started.is_set():
            started.set()

    worker = threading.Thread(target=lambda: pipeline.retrain(progress=progress))
    worker.start()
    assert started.wait(30)
    while worker.is_alive():
        served.append(cache.get()[0])
        time.sleep(0.02)
    worker.join()
    assert served and set(served) <= {1, 2}
    assert served[0] == 1, "the old champion served while the candidate trained"


def test_initialise_is_idempotent(pipeline: Pipeline) -> None:
    first = pipeline.initialise()
    assert any("4985 accepted" in m for m in first)
    assert pipeline.registry.champion_version() == 1
    assert pipeline.initialise() == []
    assert pipeline.store.count_appraisals() == 4985
