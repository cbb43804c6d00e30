"""No better grade and no heavier stone priced lower, proved on every model that may serve: the
shipped recipe holds on every appraisal and the grid; a model that does not is refused by the
retrain, cannot be promoted even with an override, and is named in the version list."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from diamond_model.data.schema import CUTS, FOUR_C, STONE_COLUMNS
from diamond_model.learning import loop as loop_module
from diamond_model.learning import monotonicity
from diamond_model.learning.loop import LearningLoop
from diamond_model.learning.versions import ArtefactRefusedError
from diamond_model.pricing.model import PriceModel, PricingModel
from tests.helpers import csv_bytes


def backwards_in_cut(model: PricingModel, appraisals: pd.DataFrame) -> PricingModel:
    """The model with its regressors refitted, unconstrained, on prices that fall 8 % per cut
    grade: a better cut is priced lower, as a leaking constraint would price it (more so)."""
    stones = appraisals.dropna(subset=list(STONE_COLUMNS)).reset_index(drop=True)
    rank = stones["cut"].map({cut: k for k, cut in enumerate(CUTS)}).to_numpy(dtype=float)
    prices = stones["price"].to_numpy(dtype=float) * np.exp(-0.08 * rank)
    full = PriceModel(monotone=False).fit(stones[list(STONE_COLUMNS)], prices)
    reduced = PriceModel(features=FOUR_C, monotone=False).fit(stones[list(FOUR_C)], prices)
    return replace(model, full=full, reduced=reduced)


def test_the_shipped_recipe_never_prices_a_better_stone_lower(
    pricing_model: PricingModel, appraisals: pd.DataFrame
) -> None:
    proof = monotonicity.check(pricing_model, appraisals)
    # every appraisal and 16 weights × 280 grade combinations; 3 grades up and 2 carat steps,
    # by both regressors (a grade at the top of its scale has no step up)
    stones = len(appraisals) + len(monotonicity.grid(pricing_model))
    assert 2 * 3 * stones < proof.checked <= 2 * 5 * stones
    assert proof.holds and proof.violations == 0, proof.worst


def test_the_check_bites_on_a_model_that_prices_a_better_cut_lower(
    pricing_model: PricingModel, appraisals: pd.DataFrame
) -> None:
    proof = monotonicity.check(backwards_in_cut(pricing_model, appraisals), appraisals)
    assert proof.violations > 1000
    assert proof.worst is not None and "the cut of a" in proof.worst, proof.worst
    assert "lowers its price by" in proof.worst
    assert proof.refusal().startswith("not promoted: a better grade or a heavier stone")


def test_a_candidate_that_prices_a_better_grade_lower_never_serves(
    pipeline: LearningLoop, appraisals: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline.ingest(csv_bytes(appraisals.iloc[:1500]), "a.csv", "tester")
    assert pipeline.retrain().promoted
    first = pipeline.registry.info(1)
    assert first.metrics["monotone_violations"] == 0 and first.metrics["monotone_checked"] > 0

    real_train = loop_module.train

    def leaking(*args: object, **kwargs: object):  # the candidate of a leaking constraint
        result = real_train(*args, **kwargs)
        return replace(result, model=backwards_in_cut(result.model, appraisals.iloc[:3000]))

    monkeypatch.setattr(loop_module, "train", leaking)
    pipeline.ingest(csv_bytes(appraisals.iloc[1500:3000]), "b.csv", "tester")
    outcome = pipeline.retrain()
    assert not outcome.promoted and pipeline.registry.champion_version() == 1
    assert outcome.reason.startswith("not promoted: a better grade or a heavier stone is priced")
    with pytest.raises(ArtefactRefusedError, match="prices a better grade or a heavier stone"):
        pipeline.registry.promote(2, override="the expert insists")
    [refused] = [v for v in pipeline.registry.versions() if v.version == 2]
    assert not refused.servable and "never served" in (refused.unservable_reason or "")


def test_a_version_from_before_the_check_is_proved_before_it_serves_again(
    pipeline: LearningLoop, appraisals: pd.DataFrame
) -> None:
    """Versions trained by the previous release carry no proof: promoting or rolling back to
    one checks it first, once, and records the figures."""
    pipeline.ingest(csv_bytes(appraisals.iloc[:1500]), "a.csv", "tester")
    pipeline.retrain()
    pipeline.ingest(csv_bytes(appraisals.iloc[1500:3000]), "b.csv", "tester")
    assert pipeline.retrain().promoted
    from diamond_model.storage.tables import ModelVersion

    with pipeline.store.session() as session, session.begin():
        row = session.get(ModelVersion, 1)
        row.metrics = {
            k: v for k, v in row.metrics.items() if not k.startswith("monotone_")
        }  # as the previous release stored it
    assert "monotone_checked" not in pipeline.registry.info(1).metrics
    assert pipeline.registry.rollback() == 1
    assert pipeline.registry.info(1).metrics["monotone_violations"] == 0
