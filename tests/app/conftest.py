"""API fixtures: a copy of the seeded database per test, client keys, a TestClient."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from app.api import create_app
from diamond_model.settings import Settings
from tests.helpers import ACCESS_CODE, auth, csv_bytes, make_keys, make_settings


@pytest.fixture
def api_settings(seeded_copy, tmp_path: Path) -> Settings:
    return make_settings(seeded_copy("sqlite"), tmp_path)


@pytest.fixture
def keys(api_settings: Settings) -> dict[str, str]:
    return make_keys(api_settings.resolved_database_url)


@pytest.fixture
def client(api_settings: Settings, keys: dict[str, str]) -> Iterator[TestClient]:
    """A client business's integration: it sends its key (quote and data:read) on every call;
    tests of other keys, or of none (`NO_KEY`), say so."""
    with TestClient(create_app(api_settings), headers=auth(keys, "reader")) as test_client:
        yield test_client


@pytest.fixture
def empty_client(tmp_path: Path) -> Iterator[TestClient]:
    settings = make_settings(f"sqlite:///{tmp_path / 'empty.sqlite3'}", tmp_path)
    app = create_app(settings)  # creates the schema the keys are stored in
    with TestClient(app) as test_client:
        test_client.headers.update(auth(make_keys(settings.resolved_database_url), "reader"))
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
