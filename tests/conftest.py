"""Shared fixtures: the bundled data, fitted models built once, fresh databases per test (SQLite
and a real PostgreSQL server), and copies of a seeded database made once per session."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import create_engine, text

from diamond_model.data.schema import BUNDLED_APPRAISED_ON
from diamond_model.data.validation import validate_csv
from diamond_model.learning.loop import BUNDLED_DATASET, LearningLoop
from diamond_model.learning.training import fit_pricing_model
from diamond_model.pricing.model import PricingModel
from diamond_model.settings import Settings
from tests.helpers import POSTGRES_URL, SEED_ROWS, csv_bytes, make_settings


@pytest.fixture(scope="session")
def dataset_bytes() -> bytes:
    return BUNDLED_DATASET.read_bytes()


@pytest.fixture(scope="session")
def appraisals(dataset_bytes: bytes) -> pd.DataFrame:
    """The bundled appraisals that pass validation (typed; set-aside measurements missing)."""
    _, result = validate_csv(dataset_bytes, "appraisal")
    frame = result.accepted.drop(columns="line")
    return frame.drop_duplicates(
        subset=[c for c in frame.columns if c != "appraised_on"]
    ).reset_index(drop=True)


@pytest.fixture(scope="session")
def complete(appraisals: pd.DataFrame) -> pd.DataFrame:
    """Bundled appraisals with every measurement."""
    return appraisals.dropna(subset=["depth", "table", "x", "y", "z"]).reset_index(drop=True)


@pytest.fixture(scope="session")
def pricing_model(appraisals: pd.DataFrame) -> PricingModel:
    """A pricing model fitted once on the first 4,000 appraisals."""
    return fit_pricing_model(appraisals.iloc[:4000])[0]


@pytest.fixture(scope="session")
def small_csv(appraisals: pd.DataFrame) -> bytes:
    """1,200 valid appraisals as CSV: enough to train quickly."""
    return csv_bytes(appraisals.iloc[:1200])


def _postgres_database(name: str | None = None, template: str | None = None) -> str:
    if not POSTGRES_URL:
        if os.environ.get("CI"):
            pytest.fail("DIAMOND_TEST_POSTGRES_URL must be set in CI (see .ci/run)")
        pytest.skip('no PostgreSQL server: eval "$(bash .ci/start-postgres.sh)" to run these')
    name = name or f"test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        clause = f' TEMPLATE "{template}"' if template else ""
        connection.execute(text(f'CREATE DATABASE "{name}"{clause}'))
    admin.dispose()
    return POSTGRES_URL.rsplit("/", 1)[0] + "/" + name


def _drop_postgres(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh empty database per test, on SQLite and on a real PostgreSQL server."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.sqlite3'}"
        return
    url = _postgres_database()
    try:
        yield url
    finally:
        _drop_postgres(url)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return make_settings(database_url, tmp_path / "instance")


@pytest.fixture
def pipeline(settings: Settings) -> Iterator[LearningLoop]:
    pipeline = LearningLoop.from_settings(settings)
    pipeline.store.create_schema()
    yield pipeline
    pipeline.store.dispose()


def _seed(url: str, appraisals: pd.DataFrame) -> None:
    settings = make_settings(url, Path("/tmp"))
    pipeline = LearningLoop.from_settings(settings)
    pipeline.store.create_schema()
    pipeline.ingest(
        csv_bytes(appraisals.iloc[:SEED_ROWS]),
        "seed.csv",
        "seed",
        retrain=False,
        upload_date=BUNDLED_APPRAISED_ON,
    )
    assert pipeline.retrain().promoted
    pipeline.store.dispose()


@pytest.fixture(scope="session")
def seeded_sqlite(tmp_path_factory: pytest.TempPathFactory, appraisals: pd.DataFrame) -> Path:
    """An SQLite file with 2,000 bundled appraisals (batch 1) and a trained champion v1."""
    path = tmp_path_factory.mktemp("seed") / "seed.sqlite3"
    _seed(f"sqlite:///{path}", appraisals)
    return path


@pytest.fixture(scope="session")
def seeded_postgres(appraisals: pd.DataFrame) -> Iterator[str]:
    """The same seed as a PostgreSQL template database (copied per test by CREATE ... TEMPLATE)."""
    url = _postgres_database(f"seed_{uuid.uuid4().hex[:8]}")
    _seed(url, appraisals)
    yield url.rsplit("/", 1)[1]
    _drop_postgres(url)


@pytest.fixture
def seeded_copy(
    request: pytest.FixtureRequest, tmp_path: Path, seeded_sqlite: Path
) -> Iterator[Callable[[str], str]]:
    """A factory: seeded_copy("sqlite" | "postgresql") is the URL of a fresh copy of the seed."""
    made: list[str] = []

    def copy(kind: str = "sqlite") -> str:
        if kind == "sqlite":
            target = tmp_path / f"copy-{len(made)}.sqlite3"
            shutil.copy(seeded_sqlite, target)
            url = f"sqlite:///{target}"
        else:
            template = request.getfixturevalue("seeded_postgres")
            url = _postgres_database(template=template)
        made.append(url)
        return url

    yield copy
    for url in made:
        if url.startswith("postgresql"):
            _drop_postgres(url)


@pytest.fixture
def empty_database(tmp_path: Path) -> Iterator[Callable[[str], str]]:
    """A factory: empty_database("sqlite" | "postgresql") is the URL of a new empty database."""
    made: list[str] = []

    def create(kind: str) -> str:
        url = (
            f"sqlite:///{tmp_path / f'empty-{len(made)}.sqlite3'}"
            if kind == "sqlite"
            else _postgres_database()
        )
        made.append(url)
        return url

    yield create
    for url in made:
        if url.startswith("postgresql"):
            _drop_postgres(url)


@pytest.fixture
def seeded_url(database_url: str, seeded_copy: Callable[[str], str]) -> str:
    """A seeded database of the same kind as `database_url` (SQLite and PostgreSQL runs)."""
    return seeded_copy("sqlite" if database_url.startswith("sqlite") else "postgresql")
