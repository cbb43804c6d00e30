"""API fixtures: a copy of the seeded database per test, client keys, a TestClient."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from app.api import create_app
from diamond_model.enums import Scope
from diamond_model.serving.keys import KeyStore
from diamond_model.settings import Settings
from diamond_model.storage.store import Store
from tests.conftest import ACCESS_CODE, csv_bytes, make_settings

EVERY_SCOPE = frozenset(Scope)


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
        "limited": keys.create(
            "limited", frozenset({Scope.QUOTE}), stones_per_day=5, requests_per_minute=4
        )[0],
    }
    store.dispose()
    return made


@pytest.fixture
def api_settings(seeded_copy, tmp_path: Path) -> Settings:
    return make_settings(seeded_copy("sqlite"), tmp_path)


@pytest.fixture
def keys(api_settings: Settings) -> dict[str, str]:
    return make_keys(api_settings.resolved_database_url)


@pytest.fixture
def client(api_settings: Settings, keys: dict[str, str]) -> Iterator[TestClient]:
    with TestClient(create_app(api_settings)) as test_client:
        yield test_client


@pytest.fixture
def empty_client(tmp_path: Path) -> Iterator[TestClient]:
    settings = make_settings(f"sqlite:///{tmp_path / 'empty.sqlite3'}", tmp_path)
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture
def dashboard_env(
    request: pytest.FixtureRequest, seeded_copy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Settings:
    """The dashboard's process points at a fresh copy of the seeded database (SQLite, or the
    real PostgreSQL server for tests parametrised with `ON_BOTH`)."""
    monkeypatch.setenv("DIAMOND_INSTANCE_DIR", str(tmp_path))
    monkeypatch.setenv("DIAMOND_DATABASE_URL", seeded_copy(getattr(request, "param", "sqlite")))
    monkeypatch.setenv("DIAMOND_ACCESS_CODE", ACCESS_CODE)
    monkeypatch.setenv("DIAMOND_AUTO_RETRAIN", "true")
    return Settings()


@pytest.fixture
def new_batch(appraisals: pd.DataFrame) -> bytes:
    rows = appraisals.iloc[2000:2300].astype({"color": str})
    rows.loc[rows.index[3], "color"] = "Z"
    rows.loc[rows.index[5], "x"] = 0
    return csv_bytes(rows)
