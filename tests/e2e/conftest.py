"""End-to-end fixtures: real servers on loopback over a copy of the seeded database."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.app.conftest import API_KEY, seeded_database  # noqa: F401 - shared session fixture


@pytest.fixture
def server_env(seeded_database: Path, tmp_path: Path) -> dict[str, str]:  # noqa: F811
    database = tmp_path / "served.sqlite3"
    shutil.copy(seeded_database, database)
    return {
        "DIAMOND_INSTANCE_DIR": str(tmp_path),
        "DIAMOND_DATABASE_URL": f"sqlite:///{database}",
        "DIAMOND_ACCESS_CODE": API_KEY,
        "DIAMOND_AUTO_RETRAIN": "true",
    }
