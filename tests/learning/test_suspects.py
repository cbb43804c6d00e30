"""Suspect prices, as the expert types them: decimal slips are caught row by row, held out of
training and of every figure, while a real market move is still followed and a shuffled file
still refused. On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app.api import create_app
from diamond_model.learning.loop import LearningLoop
from diamond_model.learning.review import CorrectionError, correct, corrections, held_appraisals
from diamond_model.pricing.quote import quote_frame
from diamond_model.settings import Settings
from diamond_model.storage.tables import Appraisal, Batch
from tests.helpers import auth, csv_bytes, dated, make_keys, repriced, shuffled

JANUARY, MARCH = date(2026, 1, 1), date(2026, 3, 1)


def quotes_of(pipeline: LearningLoop, stones: pd.DataFrame) -> np.ndarray:
    model = pipeline.registry.load(pipeline.registry.champion_version())
    found = quote_frame(model, stones.drop(columns=["price", "appraised_on"]), 0.9, False)
    return np.array([q.price for q in found.quotes])


def with_slips(
    rows: pd.DataFrame, count: int, factor: float, seed: int
) -> tuple[pd.DataFrame, set]:
    """`rows` with `count` prices multiplied by `factor`; the file lines they are on."""
    rows = rows.reset_index(drop=True).copy()
    picked = np.random.default_rng(seed).choice(len(rows), count, replace=False)
    rows.loc[picked, "price"] = (rows.loc[picked, "price"] * factor).round(0)
    return rows, {int(k) + 2 for k in picked}  # line 1 is the header


@pytest.mark.slow
@pytest.mark.parametrize(("factor", "count", "cause"), [(10.0, 40, "×10"), (0.1, 10, "÷10")])
def test_decimal_slips_are_held_as_suspects_and_change_no_figure(
    pipeline: LearningLoop, appraisals: pd.DataFrame, factor: float, count: int, cause: str
) -> None:
    base, new, unseen = appraisals.iloc[:3689], appraisals.iloc[3689:3989], appraisals.iloc[3989:]
    pipeline.ingest(csv_bytes(dated(base, JANUARY)), "january.csv", "expert", retrain=False)
    assert pipeline.retrain().promoted
    before_mae = pipeline.registry.info(1).reference_metrics["mae"]
    before = quotes_of(pipeline, unseen)

    rows, slipped = with_slips(dated(new, MARCH), count, factor, 3)
    preview = pipeline.preview(csv_bytes(rows), "march.csv")
    live = preview.live
    # A slip below $200 per carat is rejected outright by validation; the others are suspects.
    refused = set(preview.result.rejections["line"])
    assert refused <= slipped
    assert set(live.suspect_lines) == slipped - refused, "every slip, and nothing else"
    count -= len(refused)
    named = [s for s in live.suspect_list() if s.cause.startswith(cause)]
    assert len(named) >= count - 1, [s.words() for s in live.suspect_list()]
    slip = named[0]
    assert slip.likely_price == pytest.approx(slip.price / factor, rel=0.01)
    assert live.verdict == "consistent", "slips are rows, not a poisoned file"
    words = preview.sentences()
    total = 300 - len(refused)
    assert any(f"{count} of the {total} prices are suspects" in w for w in words)
    assert any(w.startswith(f"The other {total - count} prices follow the stones") for w in words)
    assert not any(w.startswith("The prices follow") for w in words), "no contradiction"

    submission = pipeline.submit(preview, "expert", retrain=True)
    assert submission.stored == total
    with pipeline.store.session() as session:
        held = session.scalar(select(func.count(Appraisal.id)).where(Appraisal.held.is_(True)))
        batch = session.get(Batch, submission.batch_id)
        assert held == count and batch.rows_held == count
    used = pipeline.store.appraisals(batch_id=submission.batch_id)
    assert len(used) == total - count and not (set(used["line"]) & slipped)

    after_mae = pipeline.registry.info(pipeline.registry.champion_version()).reference_metrics[
        "mae"
    ]
    assert after_mae == pytest.approx(before_mae, rel=0.02), (before_mae, after_mae)
    moved = quotes_of(pipeline, unseen) / before - 1
    assert abs(np.median(moved)) < 0.02 and np.median(np.abs(moved)) < 0.02, moved


def test_a_real_market_move_is_followed_and_a_shuffled_file_refused(
    pipeline: LearningLoop, appraisals: pd.DataFrame
) -> None:
    base = appraisals.iloc[:3989]
    pipeline.ingest(csv_bytes(dated(base, JANUARY)), "january.csv", "expert", retrain=False)
    assert pipeline.retrain().promoted

    move = pipeline.preview(csv_bytes(dated(repriced(base, 1.15, 1, 300), MARCH)), "up.csv")
    assert move.live.verdict == "consistent" and 13 < move.live.level_pct < 17
    assert len(move.live.suspects) <= 3, "a genuine batch has about one suspect in a thousand"
    assert any("a market move that the next model will follow" in w for w in move.sentences())

    mixed = pipeline.preview(csv_bytes(dated(shuffled(base, 2, 300), MARCH)), "mixed.csv")
    assert mixed.live.verdict == "too many suspects" and not mixed.live.consistent
    assert len(mixed.live.suspects) > 0.5 * 300
    assert any("the file as a whole looks wrong" in w for w in mixed.sentences())


def test_the_expert_corrects_or_confirms_a_held_price_and_the_old_value_is_kept(
    pipeline: LearningLoop, appraisals: pd.DataFrame, settings: Settings
) -> None:
    base, new = appraisals.iloc[:3689], appraisals.iloc[3689:3989]
    pipeline.ingest(csv_bytes(dated(base, JANUARY)), "january.csv", "expert", retrain=False)
    assert pipeline.retrain().promoted
    rows, slipped = with_slips(dated(new, MARCH), 5, 10.0, 4)
    pipeline.ingest(csv_bytes(rows), "march.csv", "expert", retrain=False)
    held = held_appraisals(pipeline)
    assert set(held["line"]) == slipped
    first, second, third, fourth = (int(i) for i in held["id"].iloc[:4])
    typed = held.set_index("id")["price"]

    fixed = correct(
        pipeline, first, {"price": typed[first] / 10}, "anna", "decimal slip", retrain=False
    )
    assert not fixed.held and fixed.before["price"] == typed[first]
    kept = correct(
        pipeline, second, {}, "anna", "checked the certificate", confirm=True, retrain=False
    )
    assert not kept.held and "confirmed as it was" in kept.sentences()[0]
    still = correct(pipeline, third, {"price": typed[third] * 2}, "anna", "retyped", retrain=False)
    assert still.held and "stays held for review" in " ".join(still.sentences())
    with pytest.raises(CorrectionError, match="reason"):
        correct(pipeline, fourth, {"price": 1000.0}, "anna", "  ")
    with pytest.raises(CorrectionError, match="not valid.*beyond these appraisals"):
        correct(pipeline, fourth, {"cut": "Poor"}, "anna", "grade")

    assert set(held_appraisals(pipeline)["id"]) == set(held["id"]) - {first, second}
    history = corrections(pipeline)
    assert len(history) == 3 and set(history["by"]) == {"anna"}
    assert history.iloc[-1]["before"]["price"] == typed[first], "the old value is kept"
    in_use = pipeline.store.appraisals()
    assert typed[first] / 10 in set(in_use["price"]) and typed[second] in set(in_use["price"])

    keys = make_keys(settings.resolved_database_url)
    with TestClient(create_app(settings)) as client:
        listed = client.get("/v1/appraisals/held", headers=auth(keys))
        assert listed.status_code == 200 and {a["id"] for a in listed.json()} >= {fourth}
        answer = client.patch(
            f"/v1/appraisals/{fourth}",
            json={"price": typed[fourth] / 10, "reason": "decimal slip", "confirm": False},
            headers=auth(keys),
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["held"] is False and answer.json()["before"]["price"] == typed[fourth]
        refused = client.patch(
            f"/v1/appraisals/{fourth}",
            json={"price": 10.0, "reason": "x"},
            headers=auth(keys, "client"),
        )
        assert refused.status_code == 403
        missing = client.patch("/v1/appraisals/999999", json={"reason": "x"}, headers=auth(keys))
        assert missing.status_code == 404
    assert corrections(pipeline).iloc[0]["by"] == "API key expert"
