"""Shared fixtures: the bundled data, fitted models built once, and a fresh database per test."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import create_engine, text

from diamond_model.pipeline import BUNDLED_DATASET, Pipeline
from diamond_model.settings import Settings
from diamond_model.training import PricingModel, fit_pricing_model
from diamond_model.validation import validate_csv

POSTGRES_URL = os.environ.get("DIAMOND_TEST_POSTGRES_URL")


@pytest.fixture(scope="session")
def dataset_bytes() -> bytes:
    return BUNDLED_DATASET.read_bytes()


@pytest.fixture(scope="session")
def appraisals(dataset_bytes: bytes) -> pd.DataFrame:
    """The bundled appraisals that pass validation (typed)."""
    _, result = validate_csv(dataset_bytes, "appraisal")
    return result.accepted.drop(columns="line").reset_index(drop=True)


@pytest.fixture(scope="session")
def pricing_model(appraisals: pd.DataFrame) -> PricingModel:
    """A pricing model fitted once on the first 4,000 appraisals."""
    return fit_pricing_model(appraisals.iloc[:4000])


@pytest.fixture(scope="session")
def small_csv(appraisals: pd.DataFrame) -> bytes:
    """1,200 valid appraisals as CSV: enough to train quickly."""
    return appraisals.iloc[:1200].to_csv(index=False).encode()


def _postgres_database() -> Iterator[str]:
    if not POSTGRES_URL:
        if os.environ.get("CI"):
            pytest.fail("DIAMOND_TEST_POSTGRES_URL must be set in CI (see .ci/run)")
        pytest.skip('no PostgreSQL server: eval "$(bash .ci/start-postgres.sh)" to run these')
    name = f"test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield POSTGRES_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh empty database per test, on SQLite and on a real PostgreSQL server."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.sqlite3'}"
    else:
        yield from _postgres_database()


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        instance_dir=tmp_path / "instance",
        database_url=database_url,
        auto_retrain=False,
        access_code="expert-code-for-tests",
    )


@pytest.fixture
def pipeline(settings: Settings) -> Iterator[Pipeline]:
    pipeline = Pipeline.from_settings(settings)
    pipeline.store.create_schema()
    yield pipeline
    pipeline.store.dispose()
