"""Undo as the expert uses it: several batches, one withdrawn, and what every view then says."""

from __future__ import annotations

import io
from contextlib import redirect_stdout

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from app import views
from app.api import create_app
from diamond_model.cli import commands
from diamond_model.enums import RunStatus, VersionStatus
from diamond_model.learning.loop import LearningLoop
from diamond_model.learning.versions import ArtefactRefusedError, GateOverrideError
from diamond_model.settings import Settings
from tests.helpers import assert_problem, auth, csv_bytes, make_keys, shuffled, two_versions


def three_batches(pipeline: LearningLoop, appraisals: pd.DataFrame) -> list[int]:
    ids = []
    for n in range(3):
        rows = appraisals.iloc[300 * n : 300 * (n + 1)]
        stored = pipeline.ingest(csv_bytes(rows), f"batch{n}.csv", "expert", retrain=False)
        ids.append(stored.batch_id)
    return ids


def test_the_batch_list_is_right_after_withdrawing_one_of_three(
    pipeline: LearningLoop,
    settings: Settings,
    appraisals: pd.DataFrame,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first, second, third = three_batches(pipeline, appraisals)
    pipeline.set_withdrawn(second, True, "typos", retrain=False)

    monkeypatch.setattr(commands, "get_settings", lambda: settings)
    out = io.StringIO()
    with redirect_stdout(out):
        assert commands.main(["batches"]) == 0
    states = {int(line.split()[0]): line.split()[5] for line in out.getvalue().splitlines()[1:]}
    assert states == {first: "active", second: "withdrawn", third: "active"}

    keys = make_keys(settings.resolved_database_url)
    with TestClient(create_app(settings)) as client:
        response = client.get("/v1/batches", headers=auth(keys))
    assert response.status_code == 200, response.text
    body = {b["id"]: b for b in response.json()}
    assert [body[i]["withdrawn"] for i in (first, second, third)] == [False, True, False]
    assert body[first]["withdrawn_at"] is None and body[second]["withdrawn_at"] is not None

    frame = pipeline.store.batches()
    assert views.batches(frame).set_index("Batch")["State"].to_dict() == {
        first: "in use",
        second: "withdrawn",
        third: "in use",
    }
    assert frame.set_index("id")["withdrawn"].to_dict() == {
        first: False,
        second: True,
        third: False,
    }


def test_withdrawing_the_batch_the_champion_learned_from_falls_back_in_the_same_call(
    pipeline: LearningLoop, appraisals: pd.DataFrame
) -> None:
    two_versions(pipeline, appraisals)
    registry = pipeline.registry
    assert registry.champion_version() == 2 and registry.info(2).learned_from == [1, 2]

    batch, retraining = pipeline.set_withdrawn(2, True, "typed by the wrong expert", retrain=False)

    assert batch.withdrawn
    assert registry.champion_version() == 1, "v1 serves again before any retrain"
    assert "Champion v2 learned from withdrawn batch 2: v1" in retraining.note
    event = registry.champion_events().iloc[-1]
    assert (event["kind"], event["version"]) == ("fallback", 1)
    assert "withdrawn batch 2" in event["note"]
    v2 = registry.info(2)
    assert not v2.servable and v2.withdrawn_from == [2]
    assert "restore the batch" in (v2.unservable_reason or "")
    with pytest.raises(ArtefactRefusedError, match="learned from withdrawn batch 2"):
        registry.promote(2)
    assert 2 not in [info.version for info in views.others_to_serve(registry.versions())]

    pipeline.set_withdrawn(2, False, retrain=False)
    assert registry.info(2).servable, "restored: v2 may serve again"
    assert registry.champion_version() == 1, "restoring changes nothing by itself"


def test_serving_a_version_the_gate_refused_needs_a_reason_and_it_stays_refused(
    pipeline: LearningLoop, appraisals: pd.DataFrame
) -> None:
    pipeline.ingest(csv_bytes(appraisals.iloc[:1200]), "a.csv", "tester")
    assert pipeline.retrain().promoted
    pipeline.ingest(csv_bytes(shuffled(appraisals.iloc[:1200], 5, 400)), "bad.csv", "tester")
    refused = pipeline.retrain()
    assert refused.status == RunStatus.REJECTED
    registry, version = pipeline.registry, refused.candidate_version

    with pytest.raises(GateOverrideError, match="The gate refused v2"):
        registry.promote(version)
    assert registry.champion_version() == 1
    keys = make_keys(pipeline.settings.resolved_database_url)
    with TestClient(create_app(pipeline.settings)) as client:
        refused_answer = client.post(f"/v1/models/{version}/promote", headers=auth(keys))
        assert_problem(refused_answer, 409, "To serve it anyway, give the reason")
        assert client.get("/v1/models", headers=auth(keys)).json()[1]["gate_refused"] is True
    assert registry.champion_version() == 1

    registry.promote(version, override="the expert checked batch 2 by hand")
    assert registry.champion_version() == version
    assert (
        "gate overridden: the expert checked batch 2 by hand"
        in (registry.champion_events().iloc[-1]["note"])
    )
    registry.rollback()
    info = registry.info(version)
    assert info.status == VersionStatus.REJECTED and info.gate_refused, "still refused"
