"""What many tests share: constants, file and settings makers, clients' keys, waits, the
dashboard's AppTest steps and the artefact tampering helpers. Fixtures live in conftest.py."""

from __future__ import annotations

import io
import os
import re
import time
from datetime import date
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
from sqlalchemy import update
from streamlit.testing.v1 import AppTest

from diamond_model.enums import Scope, VersionStatus
from diamond_model.learning.loop import LearningLoop
from diamond_model.serving.keys import KeyStore
from diamond_model.settings import Settings
from diamond_model.storage.store import Store
from diamond_model.storage.tables import (
    ChampionEvent,
    ChampionPointer,
    ModelVersion,
    utcnow,
)

ROOT = Path(__file__).resolve().parents[1]
HOME = str(ROOT / "streamlit_app.py")
PRICE = str(ROOT / "pages" / "1_Price_a_stone.py")
APPRAISALS = str(ROOT / "pages" / "2_Appraisals_and_retraining.py")
PERFORMANCE = str(ROOT / "pages" / "3_Performance.py")
BUSINESS = str(ROOT / "pages" / "4_Business.py")
POSTGRES_URL = os.environ.get("DIAMOND_TEST_POSTGRES_URL")
ACCESS_CODE = "expert-code-for-tests"
SEED_ROWS = 2000
# 5,000 bundled rows: 10 rejected, one repeats another (line 4945 is line 2431).
BUNDLED_STORED = 4989
EVERY_SCOPE = frozenset(Scope)


def csv_bytes(frame: pd.DataFrame, sep: str = ",", crlf: bool = False) -> bytes:
    """A frame as the bytes of a CSV file (`;` files get decimal commas, as spreadsheets write)."""
    out = frame.copy()
    if "appraised_on" in out and out["appraised_on"].isna().all():
        out = out.drop(columns="appraised_on")
    if sep == ";":
        for column in out.columns:
            if pd.api.types.is_float_dtype(out[column]):
                out[column] = out[column].map(
                    lambda v: "" if v != v else f"{v:g}".replace(".", ",")
                )
    return out.to_csv(index=False, sep=sep, lineterminator="\r\n" if crlf else "\n").encode()


def dated(frame: pd.DataFrame, day: date) -> pd.DataFrame:
    """The appraisals with an appraised_on column."""
    return frame.assign(appraised_on=day.isoformat())


def make_settings(url: str, folder: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "instance_dir": folder,
        "database_url": url,
        "auto_retrain": False,
        "access_code": ACCESS_CODE,
    }
    return Settings(**{**values, **overrides})


def wait_for_run(client: object, url: str, timeout: float = 120) -> dict:
    """Poll a training run (TestClient or httpx.Client) until it is no longer running."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = client.get(url).json()  # type: ignore[attr-defined]
        if run["status"] != "running":
            return run
        time.sleep(0.2)
    raise AssertionError(f"run at {url} still running after {timeout}s")


def make_keys(url: str) -> dict[str, str]:
    """An expert key (every scope), a quoting client, and a limited client."""
    store = Store(url)
    keys = KeyStore(store)
    made = {
        "expert": keys.create("expert", EVERY_SCOPE)[0],
        "client": keys.create("client", frozenset({Scope.QUOTE}))[0],
        "reader": keys.create("reader", frozenset({Scope.QUOTE, Scope.DATA_READ}))[0],
        "limited": keys.create(
            "limited", frozenset({Scope.QUOTE}), stones_per_day=5, requests_per_minute=4
        )[0],
    }
    store.dispose()
    return made


NO_KEY = {"X-API-Key": ""}  # a call without a key, from a client that sends one by default


def auth(keys: dict[str, str], name: str = "expert") -> dict[str, str]:
    return {"X-API-Key": keys[name]}


def assert_problem(response, status: int, fragment: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status and body["title"]
    assert re.fullmatch(r"https?://[^/]+/problems/[a-z-]+", body["type"]), body["type"]
    assert fragment in body["detail"], body["detail"]
    return body


class Payload:
    """What an attacker stores: unpickling it writes the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


def payload_bytes(marker: Path) -> bytes:
    buffer = io.BytesIO()
    joblib.dump(Payload(marker), buffer, compress=3)
    return buffer.getvalue()


def add_version(
    pipeline: LearningLoop,
    blob: bytes,
    fmt: int,
    sha256: str | None,
    exam: tuple[bytes, str | None] | None = None,
) -> int:
    """A model_versions row written straight into the database, as an attacker or a bad disk
    would, copying v1's provenance (`exam`: its exam artefact and hash, else none)."""
    with pipeline.store.session() as session, session.begin():
        first = session.get(ModelVersion, 1)
        row = ModelVersion(
            algorithm=first.algorithm,
            params=first.params,
            data_fingerprint=first.data_fingerprint,
            train_rows=first.train_rows,
            holdout_rows=first.holdout_rows,
            max_batch_id=first.max_batch_id,
            metrics=first.metrics,
            reference_metrics=first.reference_metrics,
            status=VersionStatus.ARCHIVED,
            training_seconds=1.0,
            run_id=None,
            format=fmt,
            artefact=blob,
            artefact_sha256=sha256,
            exam_artefact=None if exam is None else exam[0],
            exam_sha256=None if exam is None else exam[1],
        )
        session.add(row)
        session.flush()
        return row.version


def point_champion_at(pipeline: LearningLoop, version: int) -> None:
    """Move the champion by writing the rows directly (no registry checks)."""
    with pipeline.store.session() as session, session.begin():
        session.execute(
            update(ChampionPointer)
            .where(ChampionPointer.id == 1)
            .values(version=version, changed_at=utcnow())
        )
        session.add(ChampionEvent(version=version, kind="promote", note="written by hand"))


def run(path: str) -> AppTest:
    """The page as a person sees it once it has settled. The price page's first view of a
    session holds back its charts and tables for a timer AppTest does not fire: the second run
    here is that timer's pass (`test_the_price_comes_first_and_the_rest_follows`)."""
    app = AppTest.from_file(path, default_timeout=120).run()
    if path == PRICE:
        app.run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def rerun(app: AppTest) -> AppTest:
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def texts(app: AppTest) -> str:
    parts = [m.value for m in app.markdown] + [c.value for c in app.caption]
    parts += [e.value for kind in ("success", "info", "warning", "error") for e in app.get(kind)]
    parts += [str(getattr(b, "proto", "")) for b in app.get("badge")]
    return "\n".join(str(p) for p in parts)


def metrics(app: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in app.metric}


def frame(app: AppTest, column: str) -> pd.DataFrame:
    """The table on the page that has this column."""
    for element in app.dataframe:
        if column in element.value.columns:
            return element.value
    raise AssertionError(f"no table with a column {column!r}")


def click(app: AppTest, key: str) -> AppTest:
    app.button(key=key).click()
    return rerun(app)


def unlock(app: AppTest, code: str = ACCESS_CODE, name: str = "") -> AppTest:
    app.text_input(key="who").set_value(name)
    app.text_input(key="code").set_value(code)
    next(b for b in app.button if b.label == "Unlock expert mode").click()
    return rerun(app)


def wait_for_retrain(app: AppTest, settings: Settings, timeout: float = 120) -> None:
    pipeline = LearningLoop.from_settings(settings)
    deadline = time.monotonic() + timeout
    while pipeline.runs()[0].status == "running":
        assert time.monotonic() < deadline, "the retrain did not finish"
        time.sleep(0.3)
    pipeline.store.dispose()


def shuffled(stones: pd.DataFrame, seed: int, n: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = stones.iloc[rng.integers(0, len(stones), n)].copy()
    rows["price"] = rng.permutation(rows["price"].to_numpy())
    return rows


def two_versions(pipeline: LearningLoop, appraisals: pd.DataFrame) -> None:
    """Two batches, a model after each: v2 (more data) is the champion."""
    pipeline.ingest(csv_bytes(appraisals.iloc[:1200]), "a.csv", "tester")
    pipeline.retrain()
    pipeline.ingest(csv_bytes(appraisals.iloc[1200:2400]), "b.csv", "tester")
    assert pipeline.retrain().promoted


def repriced(stones: pd.DataFrame, factor: float, seed: int, n: int) -> pd.DataFrame:
    """`n` of these stones appraised again: prices × factor, with a little appraiser noise."""
    rng = np.random.default_rng(seed)
    rows = stones.iloc[rng.integers(0, len(stones), n)].copy()
    rows["price"] = (rows["price"] * factor * np.exp(rng.normal(0, 0.02, n))).round(0)
    return rows
