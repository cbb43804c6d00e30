"""End-to-end fixtures: real servers on loopback over a copy of the seeded database."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import ACCESS_CODE, make_keys


def server_environment(url: str, folder: Path, **extra: str) -> dict[str, str]:
    """A test server's environment. DIAMOND_EXPOSE_WORKER=true: tests that need to know which of
    two workers answered read the `X-Worker` header, which production never sends.
    DIAMOND_API_OPEN_READS=true: these tests are about workers, outages and bodies, and price
    without a key where that is not the point; the secure default (every route keyed) is tested
    on a real server by `test_a_real_server_refuses_calls_without_a_key_by_default`."""
    return {
        "DIAMOND_INSTANCE_DIR": str(folder),
        "DIAMOND_DATABASE_URL": url,
        "DIAMOND_ACCESS_CODE": ACCESS_CODE,
        "DIAMOND_EXPOSE_WORKER": "true",
        "DIAMOND_API_OPEN_READS": "true",
        **extra,
    }


@pytest.fixture
def server_env(seeded_copy, tmp_path: Path) -> dict[str, str]:
    return server_environment(seeded_copy("sqlite"), tmp_path, DIAMOND_AUTO_RETRAIN="true")


@pytest.fixture
def server_keys(server_env: dict[str, str]) -> dict[str, str]:
    return make_keys(server_env["DIAMOND_DATABASE_URL"])
