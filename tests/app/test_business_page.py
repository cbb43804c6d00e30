"""The owner's Business page as people use it: the owner creates a key (shown once, with its first
call), sees a client's use and income, changes a price and revokes the key; an expert reads it
and cannot change it; nobody signed in sees no client's figures."""

from __future__ import annotations

from datetime import date

from fastapi.testclient import TestClient

from app.api import create_app
from diamond_model.learning.loop import LearningLoop
from diamond_model.serving.keys import KeyStore
from diamond_model.serving.people import People, Role
from diamond_model.settings import Settings
from tests.helpers import BUSINESS, click, frame, metrics, rerun, run, texts, unlock

STONE = {"carat": 0.7, "cut": "Ideal", "color": "F", "clarity": "VS2"}


def test_the_owner_creates_a_key_sees_its_income_changes_its_price_and_revokes_it(
    dashboard_env: Settings,
) -> None:
    app = unlock(run(BUSINESS))  # the installation's shared code: the owner's
    assert "No client keys yet. Create the first one below." in texts(app)
    app.text_input(key="nk_name").set_value("gioielleria-rossi")
    app.number_input(key="nk_price").set_value(40.0)
    next(b for b in app.button if b.label == "Create the key").click()
    app = rerun(app)
    shown = [c.value for c in app.code]
    secret = shown[0]
    assert secret.startswith("dk_") and "shown this once" in texts(app)
    assert f"X-API-Key: {secret}" in shown[1] and "/v1/quotes" in shown[1], "the first curl"

    # The client prices 3 + 25 stones through the API, and sends one bad request.
    with TestClient(create_app(dashboard_env), headers={"X-API-Key": secret}) as api:
        assert api.post("/v1/quotes", json=STONE).status_code == 200
        assert api.post("/v1/quotes/batch", json={"stones": [STONE] * 2}).status_code == 200
        assert api.post("/v1/quotes/batch", json={"stones": [STONE] * 25}).status_code == 200
        assert api.post("/v1/quotes", json={**STONE, "cut": "Superb"}).status_code == 422
    app = click(app, "copied")
    assert not app.code, "the key is gone from the page once copied"
    figures = metrics(app)
    assert figures["Stones priced for clients"] == "28"
    assert figures[f"Income in {date.today():%B %Y}"] == "$1.12"  # 28 stones at $40 per 1,000
    clients = frame(app, "Client").set_index("Client")
    assert clients.loc["gioielleria-rossi", "Price per 1,000 stones"] == "$40.00"
    assert clients.loc["gioielleria-rossi", "Stones this month"] == 28
    month = frame(app, "Refused for a limit")
    assert month[["Requests", "Stones priced", "Failed"]].iloc[0].tolist() == [4, 28, 1]
    pdf = next(d for d in app.get("download_button") if "PDF" in str(d.proto.label))
    assert pdf is not None
    assert "28 stones at $40.00 per 1,000 = **$1.12**" in texts(app)

    change_form = [n for n in app.number_input if n.label == "Price per 1,000 stones ($)"]
    change_form[-1].set_value(25.0)
    next(b for b in app.button if b.label == "Save").click()
    app = rerun(app)
    assert "$25.00 per 1,000 stones; saved" in texts(app)
    assert metrics(app)[f"Income in {date.today():%B %Y}"] == "$0.70"

    app.checkbox(key="rk_sure").check()
    app = click(rerun(app), "rk_go")
    assert "'gioielleria-rossi' is revoked" in texts(app)
    assert frame(app, "Client")["State"].iloc[0].startswith("revoked")
    with TestClient(create_app(dashboard_env), headers={"X-API-Key": secret}) as api:
        refused = api.post("/v1/quotes", json=STONE)
    assert refused.status_code == 403 and "revoked" in refused.json()["detail"]


def test_an_expert_reads_the_business_and_cannot_change_a_key(dashboard_env: Settings) -> None:
    pipeline = LearningLoop.from_settings(dashboard_env)
    People(pipeline.store).add("Anna Rossi", Role.EXPERT, "anna-personal-code")
    KeyStore(pipeline.store).create("orafo", frozenset({"quote"}))
    pipeline.store.dispose()
    nobody = run(BUSINESS)
    assert "orafo" not in texts(nobody) and not nobody.dataframe, "no figures before signing in"
    assert "it is the owner's and the experts' only" in texts(nobody)
    app = unlock(nobody, "anna-personal-code", "Anna Rossi")
    assert "orafo" in frame(app, "Client")["Client"].tolist()
    assert "Only the owner can create, change or revoke client keys." in texts(app)
    assert not [b for b in app.button if b.label in ("Create the key", "Save", "Revoke the key")]
