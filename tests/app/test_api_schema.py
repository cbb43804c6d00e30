"""The published OpenAPI file stays in sync, and generated requests never break the server."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app.api import create_app
from app.openapi_export import SCHEMA_PATH, render
from tests.helpers import make_keys, make_settings


def test_published_openapi_file_is_in_sync() -> None:
    assert SCHEMA_PATH.read_text(encoding="utf-8") == render(), (
        "docs/openapi.json is stale: run `python -m app.openapi_export` and commit it"
    )


def test_the_document_reads_well_for_a_generated_client() -> None:
    schema = create_app().openapi()
    assert schema["info"]["version"].startswith("1."), "the version follows the /v1 path"
    assert schema["servers"] == [
        {"url": "/", "description": "This server: the address this document came from."}
    ]
    ids = {op["operationId"] for ops in schema["paths"].values() for op in ops.values()}
    assert {"create_quote", "get_quote", "list_batches", "upload_appraisals"} <= ids
    assert not [i for i in ids if "_v1_" in i], "no FastAPI default ids"


def test_every_route_documents_its_problems() -> None:
    schema = create_app().openapi()
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            assert "422" in operation["responses"], f"{method} {path}"
            assert (
                operation["responses"]["422"]["content"].get("application/problem+json") is not None
            ), f"{method} {path} does not document its problem documents"


# Schemathesis builds its tests at collection time, so the app is built here; its database is
# filled (a copy of the seeded one) and its lifespan started by the autouse fixture below.
_FOLDER = Path(tempfile.mkdtemp(prefix="schemathesis-"))
_SETTINGS = make_settings(f"sqlite:///{_FOLDER / 'api.sqlite3'}", _FOLDER)
_APP = create_app(_SETTINGS)
schema = schemathesis.openapi.from_asgi("/openapi.json", _APP)
_KEYS: dict[str, str] = {}


@pytest.fixture(scope="module", autouse=True)
def _served(seeded_sqlite: Path) -> Iterator[None]:
    # Loading the schema above already ran the app once on an empty database: drop its files
    # (including the WAL, which would otherwise shadow the copied pages).
    for stale in _FOLDER.glob("api.sqlite3*"):
        stale.unlink()
    shutil.copy(seeded_sqlite, _FOLDER / "api.sqlite3")
    _KEYS.update(make_keys(_SETTINGS.resolved_database_url))
    with TestClient(_APP):  # runs the lifespan: services exist for every generated call
        yield
        _APP.state.services.wait_for_background()
    shutil.rmtree(_FOLDER, ignore_errors=True)


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_generated_requests_get_no_server_error_and_match_the_schema(case) -> None:
    case.call_and_validate(
        headers={"X-API-Key": _KEYS["expert"]},
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ],
    )
