"""Each dashboard page through Streamlit's AppTest, as staff, the expert and Francesco use them."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from diamond_model.pipeline import Pipeline
from diamond_model.settings import Settings
from tests.app.conftest import API_KEY

ROOT = Path(__file__).resolve().parents[2]
HOME = str(ROOT / "streamlit_app.py")
PRICE = str(ROOT / "pages" / "1_Price_a_stone.py")
APPRAISALS = str(ROOT / "pages" / "2_Appraisals_and_retraining.py")
PERFORMANCE = str(ROOT / "pages" / "3_Performance.py")


@pytest.fixture
def dashboard_env(
    seeded_database: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Settings:
    """The dashboard's process points at a fresh copy of the seeded database."""
    database = tmp_path / "dashboard.sqlite3"
    shutil.copy(seeded_database, database)
    monkeypatch.setenv("DIAMOND_INSTANCE_DIR", str(tmp_path))
    monkeypatch.setenv("DIAMOND_DATABASE_URL", f"sqlite:///{database}")
    monkeypatch.setenv("DIAMOND_ACCESS_CODE", API_KEY)
    monkeypatch.setenv("DIAMOND_AUTO_RETRAIN", "true")
    return Settings()


@pytest.fixture
def empty_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIAMOND_INSTANCE_DIR", str(tmp_path / "empty"))
    monkeypatch.delenv("DIAMOND_DATABASE_URL", raising=False)
    monkeypatch.delenv("DIAMOND_ACCESS_CODE", raising=False)


def run(path: str) -> AppTest:
    app = AppTest.from_file(path, default_timeout=120).run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def texts(app: AppTest) -> str:
    parts = [m.value for m in app.markdown] + [c.value for c in app.caption]
    parts += [e.value for kind in ("success", "info", "warning", "error") for e in app.get(kind)]
    return "\n".join(str(p) for p in parts)


def click(app: AppTest, label: str) -> AppTest:
    matches = [b for b in app.button if b.label.startswith(label)]
    assert matches, f"no button {label!r}; have {[b.label for b in app.button]}"
    matches[0].click()
    return app.run()


def unlock(app: AppTest, code: str = API_KEY) -> AppTest:
    app.text_input[0].set_value(code)
    return click(app, "Unlock expert mode")


# ---- home --------------------------------------------------------------------------------------


def test_home_states_the_champion_and_its_accuracy(dashboard_env: Settings) -> None:
    app = run(HOME)
    assert "Model v1" in app.subheader[0].value
    labels = {m.label: m.value for m in app.metric}
    assert labels["Real prices inside the 90% range"].endswith("%")
    assert "priced within" in texts(app) and "in 10 real prices fell inside" in texts(app)


def test_every_page_loads_on_an_empty_database(empty_env: None) -> None:
    assert "No price model is trained yet" in texts(run(HOME))
    assert "No price model is trained yet" in texts(run(PRICE))
    assert "No appraisals stored yet" in texts(run(APPRAISALS))
    assert "No appraisals stored yet" in texts(run(PERFORMANCE))


# ---- price a stone -----------------------------------------------------------------------------


def test_price_page_quotes_explains_and_compares(dashboard_env: Settings) -> None:
    app = run(PRICE)
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["Estimated price"].startswith("$")
    low, high = metrics["Likely range (90% of real prices fall inside)"].split(" – ")
    price = float(metrics["Estimated price"].strip("$").replace(",", ""))
    assert float(low.strip("$").replace(",", "")) < price < float(high.strip("$").replace(",", ""))
    assert "compared with a typical stone" in texts(app)
    assert len(app.get("plotly_chart")) == 2, "waterfall and carat curve"
    what_if, comparables = app.dataframe[0].value, app.dataframe[1].value
    assert set(what_if["change"]) == {"one grade down", "one grade up"}
    assert len(comparables) > 0 and (comparables["carat"].between(0.8, 1.25)).all()


def test_price_page_changes_with_the_inputs_and_flags_extrapolation(
    dashboard_env: Settings,
) -> None:
    app = run(PRICE)
    first = {m.label: m.value for m in app.metric}["Estimated price"]
    app.number_input[0].set_value(6.0)
    app.run()
    assert {m.label: m.value for m in app.metric}["Estimated price"] != first
    assert "this estimate is an extrapolation" in texts(app)


def test_price_page_reports_inconsistent_measurements_in_words(dashboard_env: Settings) -> None:
    app = run(PRICE)
    for index, value in zip(range(1, 6), (62.0, 57.0, 6.4, 6.4, 1.5), strict=True):
        app.number_input[index].set_value(value)
    app.run()
    assert not app.exception
    assert "depth % disagrees with the measurements" in texts(app)
    assert not app.metric, "no price is shown for an impossible stone"


def test_price_a_list_with_bad_rows(dashboard_env: Settings) -> None:
    app = run(PRICE)
    csv = b"carat,cut,color,clarity\n1.0,Ideal,G,VS2\n0.5,Good,Q,VS1\n=HYPERLINK(1),Good,E,VS1\n"
    app.file_uploader(key="price_list").set_value(("stones.csv", csv, "text/csv"))
    app.run()
    assert "Priced 1 of 3 rows; 2 could not be priced" in texts(app)
    table = app.dataframe[-1].value
    assert table["error"].tolist()[0] == "" and "not a color grade" in table["error"][1]


# ---- appraisals and retraining -----------------------------------------------------------------


def test_wrong_access_code_is_refused_and_uploads_stay_locked(dashboard_env: Settings) -> None:
    app = run(APPRAISALS)
    assert app.file_uploader(key="appraisal_files").disabled
    app = unlock(app, "not-the-code")
    assert "That access code is not right" in texts(app)
    assert app.file_uploader(key="appraisal_files").disabled
    assert not any(b.label == "Retrain now" for b in app.button)
    assert len(app.dataframe) >= 2, "history stays visible read-only"


def test_upload_preview_then_store_once(dashboard_env: Settings, appraisals: pd.DataFrame) -> None:
    batch = appraisals.iloc[2000:2100].astype({"cut": str})
    batch.loc[batch.index[0], "cut"] = "Superb"
    batch.loc[batch.index[1], "price"] = -3
    data = batch.to_csv(index=False).encode()
    app = unlock(run(APPRAISALS))
    assert not app.file_uploader(key="appraisal_files").disabled
    app.file_uploader(key="appraisal_files").set_value(("new.csv", data, "text/csv"))
    app.run()
    metrics = {m.label: m.value for m in app.metric}
    assert (metrics["Rows accepted"], metrics["Rows rejected"]) == ("98", "2")
    rejected = app.dataframe[0].value
    assert rejected["line"].tolist() == [2, 3]
    app = click(app, "Store 98 appraisals from new.csv")
    assert "Stored batch 2: 98 appraisals (2 rejected rows recorded)" in texts(app)
    assert "Run 2:" in texts(app), "the upload retrained automatically"
    app.run()  # a rerun with the file still selected must not store it again
    assert "is stored as batch 2" in texts(app)
    pipeline = Pipeline.from_settings(dashboard_env)
    assert pipeline.store.count_appraisals() == 2098
    pipeline.store.dispose()


def test_retrain_promotes_and_a_corrupted_batch_is_refused(
    dashboard_env: Settings, appraisals: pd.DataFrame
) -> None:
    app = click(unlock(run(APPRAISALS)), "Retrain even if no data changed")
    assert "promoted: candidate not worse than the champion" in texts(app)
    rng = np.random.default_rng(7)
    corrupted = appraisals.iloc[:2000].copy()
    corrupted["price"] = rng.permutation(corrupted["price"].to_numpy())
    corrupted["carat"] = corrupted["carat"] + 0.001
    app.file_uploader(key="appraisal_files").set_value(
        ("shuffled.csv", corrupted.to_csv(index=False).encode(), "text/csv")
    )
    app.run()
    app = click(app, "Store 2,000 appraisals from shuffled.csv")
    assert "not promoted: the candidate is worse than the champion" in texts(app)
    pipeline = Pipeline.from_settings(dashboard_env)
    assert pipeline.registry.champion_version() == 2
    pipeline.store.dispose()


def test_a_model_promoted_elsewhere_is_used_on_the_next_quote(dashboard_env: Settings) -> None:
    pipeline = Pipeline.from_settings(dashboard_env)
    pipeline.retrain(force=True)
    app = run(PRICE)
    assert "Model v2" in texts(app)
    pipeline.registry.promote(1)  # as the CLI or the API would, from another process
    app.run()
    assert "Model v1" in texts(app)
    pipeline.store.dispose()


# ---- performance -------------------------------------------------------------------------------


def test_performance_page_shows_data_and_diagnostics(dashboard_env: Settings) -> None:
    app = run(PERFORMANCE)
    assert len(app.get("plotly_chart")) == 5, "distribution, scatter, two grade views, volume"
    assert "Ideal cuts look cheaper" in texts(app)
    app.radio[0].set_value("Model diagnostics")
    app.run()
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["MAPE"].endswith("%") and metrics["R²"].startswith("0.9")
    assert len(app.get("plotly_chart")) == 5
    assert "held-out appraisals" in texts(app)
    app.radio[0].set_value("History")
    app.run()
    assert len(app.get("plotly_chart")) == 1 and len(app.dataframe) == 1
