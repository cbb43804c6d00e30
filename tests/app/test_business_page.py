"""The owner's Business page as people use it: the owner creates a key (shown once, with its first
call), sees a client's use and income, changes a price and revokes the key; an expert reads it
and cannot change it; nobody signed in sees no client's figures; the monthly report says what
Home and Business say."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import pandas as pd
from fastapi.testclient import TestClient
from pypdf import PdfReader

from app.api import create_app
from diamond_model.learning.loop import LearningLoop
from diamond_model.serving.keys import KeyStore
from diamond_model.serving.metering import Meter
from diamond_model.serving.people import People, Role
from diamond_model.settings import Settings
from tests.app.test_dashboard import answer
from tests.helpers import (
    BUSINESS,
    HOME,
    ROOT,
    click,
    csv_bytes,
    frame,
    metrics,
    rerun,
    run,
    texts,
    unlock,
)

SHOTS = ROOT / "artifacts" / "screenshots"

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


def test_the_monthly_report_says_what_home_and_business_say(
    dashboard_env: Settings, appraisals: pd.DataFrame, tmp_path: Path
) -> None:
    """`python -m diamond_model report --month M` for this month: the same three answers as Home
    and the same income as the Business page, on one page (rendered to PNG to be looked at)."""
    pipeline = LearningLoop.from_settings(dashboard_env)
    pipeline.ingest(csv_bytes(appraisals.iloc[2000:]), "more.csv", "expert", retrain=False)
    assert pipeline.retrain().promoted
    _, client = KeyStore(pipeline.store).create("orafo", frozenset({"quote"}), price_per_1000=30.0)
    meter = Meter(pipeline.store)
    for _ in range(3):
        meter.record(client, stones=411)
    meter.flush()
    pipeline.store.dispose()

    home = run(HOME)
    business = unlock(run(BUSINESS))
    income = metrics(business)[f"Income in {date.today():%B %Y}"]
    assert income == "$36.99"  # 1,233 stones at $30 per 1,000

    path = tmp_path / "report.pdf"
    month = f"{date.today():%Y-%m}"
    done = subprocess.run(
        [sys.executable, "-m", "diamond_model", "report", "--month", month, "-o", str(path)],
        capture_output=True,
        text=True,
        env=os.environ,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    printed = " ".join("\n".join(p.extract_text() for p in PdfReader(path).pages).split())
    assert len(PdfReader(path).pages) == 1, "one page"
    for question in ("Is it good?", "Is it getting better?", "What changed?"):
        said = answer(home, question).splitlines()
        for line in said:
            assert " ".join(line.removeprefix("- ").split()) in printed, (question, line)
    assert income in printed
    assert "orafo 1,233 $30.00 $36.99" in printed
    SHOTS.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["pdftoppm", "-png", "-r", "70", "-singlefile", str(path), str(SHOTS / "report")],
        check=True,
    )
