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
from diamond_model.learning.loop import LearningLoop
from diamond_model.settings import Settings
from tests.helpers import auth, csv_bytes, make_keys


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
