"""API fixtures: a database seeded and trained once, copied fresh for every test."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from app.api import create_app
from diamond_model.pipeline import Pipeline
from diamond_model.settings import Settings

API_KEY = "expert-key-for-tests"


def wait_for_run(client: object, url: str, timeout: float = 90) -> dict:
    """Poll a training run (TestClient or httpx.Client) until it is no longer running."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = client.get(url).json()  # type: ignore[attr-defined]
        if run["status"] != "running":
            return run
        time.sleep(0.2)
    raise AssertionError(f"run at {url} still running after {timeout}s")


@pytest.fixture(scope="session")
def seeded_database(tmp_path_factory: pytest.TempPathFactory, appraisals: pd.DataFrame) -> Path:
    """An SQLite file with 2,000 bundled appraisals (batch 1) and a trained champion v1."""
    folder = tmp_path_factory.mktemp("seed")
    settings = Settings(instance_dir=folder, auto_retrain=False)
    pipeline = Pipeline.from_settings(settings)
    pipeline.store.create_schema()
    pipeline.store.ingest(appraisals.iloc[:2000].to_csv(index=False).encode(), "seed.csv", "seed")
    assert pipeline.retrain().promoted
    pipeline.store.dispose()
    return folder / "diamonds.sqlite3"


@pytest.fixture
def api_settings(seeded_database: Path, tmp_path: Path) -> Settings:
    database = tmp_path / "api.sqlite3"
    shutil.copy(seeded_database, database)
    return Settings(
        instance_dir=tmp_path,
        database_url=f"sqlite:///{database}",
        access_code=API_KEY,
        auto_retrain=False,
    )


@pytest.fixture
def client(api_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(api_settings)) as test_client:
        yield test_client


@pytest.fixture
def empty_client(tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(instance_dir=tmp_path / "empty", access_code=API_KEY, auto_retrain=False)
    with TestClient(create_app(settings)) as test_client:
        yield test_client
