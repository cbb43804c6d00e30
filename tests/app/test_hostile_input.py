"""What a stranger can send, through FastAPI's TestClient: bodies past each route's cap, a batch
of millions of empty stones, dust-sized carats, a failure inside the server, storage that is full
or read-only, and a worker's pid in the headers."""

from __future__ import annotations

import errno
import importlib
import json
import logging
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event
from sqlalchemy.exc import OperationalError

from app import api, views
from app.api import BYTES_PER_STONE, SMALL_BYTES, body_cap, create_app
from diamond_model.data.schema import EXAMPLE_STONE
from diamond_model.learning.loop import LearningLoop
from diamond_model.settings import Settings
from diamond_model.storage import migrate
from diamond_model.storage.engine import StorageFault, storage_fault
from diamond_model.storage.migrate import ReadOnlyUpgradeError
from diamond_model.storage.store import Store
from tests.helpers import (
    APPRAISALS,
    assert_problem,
    auth,
    click,
    csv_bytes,
    make_keys,
    make_settings,
    rerun,
    run,
    unlock,
)

quote_routes = importlib.import_module("app.routes.quotes")  # app.routes.quotes is the router
STONE = EXAMPLE_STONE
EMPTY = {"carat": 0.5, "cut": "Good", "color": "E", "clarity": "VS1"}


def empty_stones(count: int) -> bytes:
    """`{"stones": [{}, {}, ...]}`: three bytes a stone, the cheapest batch there is."""
    return b'{"stones": [' + b",".join([b"{}"] * count) + b"]}"


def post_json(client: TestClient, path: str, body: bytes, **headers: str):
    return client.post(path, content=body, headers={"content-type": "application/json", **headers})


# ---- a cap per route ----------------------------------------------------------------------------


def test_every_route_has_a_cap_from_the_settings() -> None:
    settings = Settings(max_batch_stones=10_000, max_upload_bytes=20_000_000)
    caps = {
        (method, path): body_cap(settings, method, path)
        for method, path in [
            ("POST", "/v1/quotes"),
            ("POST", "/v1/quotes/batch"),
            ("POST", "/v1/quotes/batch/csv"),
            ("POST", "/v1/appraisals"),
            ("POST", "/v1/batches/1/withdraw"),
            ("GET", "/v1/models"),
            ("PUT", "/nowhere"),
        ]
    }
    assert caps == {
        ("POST", "/v1/quotes"): SMALL_BYTES,
        ("POST", "/v1/quotes/batch"): 10_000 * BYTES_PER_STONE + SMALL_BYTES,
        ("POST", "/v1/quotes/batch/csv"): 20_000_000 + api.MULTIPART_SLACK,
        ("POST", "/v1/appraisals"): 20_000_000 + api.MULTIPART_SLACK,
        ("POST", "/v1/batches/1/withdraw"): SMALL_BYTES,
        ("GET", "/v1/models"): SMALL_BYTES,
        ("PUT", "/nowhere"): SMALL_BYTES,
    }
    assert body_cap(Settings(max_batch_stones=10), "POST", "/v1/quotes/batch") == 20_384


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/quotes"),
        ("POST", "/v1/batches/1/withdraw"),
        ("POST", "/v1/training-runs"),
        ("GET", "/v1/models"),
        ("GET", "/health"),
        ("POST", "/nowhere"),
    ],
)
def test_a_body_past_a_small_routes_cap_is_413_before_it_is_read(
    client: TestClient, keys: dict[str, str], method: str, path: str
) -> None:
    body = b'{"note": "' + b"x" * SMALL_BYTES + b'"}'
    response = client.request(
        method, path, content=body, headers={"content-type": "application/json", **auth(keys)}
    )
    problem = assert_problem(response, 413, f"over the limit of {SMALL_BYTES:,} bytes")
    assert path in problem["detail"] and response.headers["connection"] == "close"


def test_a_chunked_body_past_the_cap_is_413(client: TestClient) -> None:
    """(The TestClient hands over the whole body; that the server stops reading at the cap is
    shown on a real socket in tests/e2e/test_api_hostile.py.)"""

    def chunks() -> Iterator[bytes]:
        for _ in range(100):
            yield b" " * 10_000

    response = client.post(
        "/v1/quotes", content=chunks(), headers={"content-type": "application/json"}
    )
    assert_problem(response, 413, f"over the limit of {SMALL_BYTES:,} bytes for POST /v1/quotes")
    assert response.headers["connection"] == "close"


def test_a_batch_within_its_cap_is_priced_even_written_out_loosely(
    client: TestClient, api_settings: Settings
) -> None:
    """The cap leaves room for a client's indentation, long floats and own fields."""
    api_settings.max_batch_stones = 50
    stone = {**STONE, "x": 6.609999999999999, "y": 6.650000000000001, "sku": "AB-12345-XYZ"}
    body = json.dumps({"stones": [stone] * 50}, indent=4).encode()
    assert len(body) < body_cap(api_settings, "POST", "/v1/quotes/batch")
    response = post_json(client, "/v1/quotes/batch", body)
    assert response.status_code == 200 and response.json()["priced"] == 50


# ---- a batch is counted before it is validated --------------------------------------------------


def test_two_million_empty_stones_are_refused_before_a_byte_is_parsed(client: TestClient) -> None:
    response = post_json(client, "/v1/quotes/batch", empty_stones(2_000_000))
    assert_problem(response, 413, "over the limit of 4,016,384 bytes for POST /v1/quotes/batch")


def test_a_body_full_of_empty_stones_under_the_cap_is_counted_before_validation(
    client: TestClient,
) -> None:
    """1,330,000 `{}` fit the 4 MB cap: one error naming the limit, none per stone (pydantic
    validating each took ~5 s holding the GIL)."""
    body = empty_stones(1_330_000)
    assert len(body) < 4_016_384
    problem = assert_problem(
        post_json(client, "/v1/quotes/batch", body),
        422,
        "at most 10,000 stones per request; got 1,330,000",
    )
    assert [e["field"] for e in problem["errors"]] == ["stones"]


def test_the_count_comes_before_any_stone_is_looked_at(
    client: TestClient, api_settings: Settings
) -> None:
    """Stones that are not even objects: before the count came first, each got its own error."""
    api_settings.max_batch_stones = 10
    problem = assert_problem(
        post_json(client, "/v1/quotes/batch", b'{"stones": [' + b",".join([b"1"] * 500) + b"]}"),
        422,
        "at most 10 stones per request; got 500",
    )
    assert len(problem["errors"]) == 1


@pytest.mark.parametrize(
    ("body", "content_type", "fragment"),
    [
        (b"not json", "application/json", "must be a JSON object"),
        (b"", "application/json", "must be a JSON object"),
        (b'{"stones": [{}]}', "text/plain", "must be a JSON object"),
        (b"[1, 2]", "application/json", "must be a JSON object"),
        (b'{"stones": {"a": 1}}', "application/json", "stones"),
        (b'{"stones": []}', "application/json", "at least 1 item"),
        (b"\xff\xfe\x00garbage", "application/json", "must be a JSON object"),
    ],
)
def test_a_batch_body_that_is_not_a_batch_gets_a_readable_problem(
    client: TestClient, body: bytes, content_type: str, fragment: str
) -> None:
    response = client.post("/v1/quotes/batch", content=body, headers={"content-type": content_type})
    assert_problem(response, 422, fragment)


def test_a_batch_priced_in_chunks_answers_as_one_call_would(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    stones = [STONE, {**STONE, "cut": "Superb"}, EMPTY, {"carat": "heavy"}, EMPTY, STONE, EMPTY]

    def answer() -> list[dict]:
        body = client.post("/v1/quotes/batch", json={"stones": stones, "explain": True}).json()
        for item in body["results"]:
            if item["quote"]:
                item["quote"].pop("quote_id")
        return body

    whole = answer()
    monkeypatch.setattr(quote_routes, "CHUNK_STONES", 2)
    assert answer() == whole
    assert [r["position"] for r in whole["results"]] == list(range(7))
    assert (whole["priced"], whole["failed"]) == (5, 2)
    assert whole["results"][3]["errors"][0]["field"] == "carat"


def test_a_csv_priced_in_chunks_keeps_its_file_lines(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    csv = "carat,cut,color,clarity\n1.1,Ideal,H,SI2\n0.5,Good,Q,VS1\n0.7,Good,E\n\n0.7,Good,E,VS1\n"

    def answer() -> dict:
        body = client.post(
            "/v1/quotes/batch/csv", files={"file": ("stones.csv", csv, "text/csv")}
        ).json()
        for item in body["results"]:
            if item["quote"]:
                item["quote"].pop("quote_id")
        return body

    whole = answer()
    monkeypatch.setattr(quote_routes, "CHUNK_STONES", 1)
    assert answer() == whole
    assert [r["line"] for r in whole["results"]] == [2, 3, 4, 6]


# ---- carats no lighter than the smallest melee ------------------------------------------------


def test_a_stone_lighter_than_the_smallest_melee_is_refused_in_words(client: TestClient) -> None:
    problem = assert_problem(
        client.post("/v1/quotes", json={**STONE, "carat": 0.0001}),
        422,
        "greater than or equal to 0.001",
    )
    assert problem["errors"][0]["field"] == "carat"
    batch = client.post("/v1/quotes/batch", json={"stones": [{**EMPTY, "carat": 0.0001}]}).json()
    [error] = batch["results"][0]["errors"]
    assert error["reason"] == "Carat must be at least 0.001 ct and at most 30 ct"
    assert "inf" not in json.dumps(batch) and "$0.00" not in json.dumps(batch)
    assert_problem(client.get("/v1/comparables", params={**EMPTY, "carat": 0.0001}), 422, "0.001")
    lightest = client.post("/v1/quotes", json={**STONE, "carat": 0.001, "x": None})
    assert lightest.status_code == 200 and lightest.json()["price"] > 0


def test_the_openapi_document_states_the_carat_bounds(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    carat = schema["components"]["schemas"]["Stone"]["properties"]["carat"]
    assert (carat["minimum"], carat["maximum"]) == (0.001, 30.0)
    [param] = [
        p for p in schema["paths"]["/v1/comparables"]["get"]["parameters"] if p["name"] == "carat"
    ]
    assert (param["schema"]["minimum"], param["schema"]["maximum"]) == (0.001, 30.0)
    batch = schema["paths"]["/v1/quotes/batch"]["post"]["requestBody"]
    assert batch["content"]["application/json"]["schema"]["$ref"].endswith("/BatchIn")
    assert "LooseStone" in schema["components"]["schemas"]


# ---- a failure inside the server ---------------------------------------------------------------


def test_a_500_gives_an_id_to_find_the_log_line_and_nothing_of_the_code(
    api_settings: Settings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    keys = make_keys(api_settings.resolved_database_url)
    with TestClient(
        create_app(api_settings), raise_server_exceptions=False, headers=auth(keys, "reader")
    ) as client:

        def broken() -> None:
            raise RuntimeError("secret internals at /srv/app/registry.py")

        monkeypatch.setattr(client.app.state.services.registry, "versions", broken)
        with caplog.at_level(logging.ERROR, logger="app.problems"):
            response = client.get("/v1/models")
    problem = assert_problem(response, 500, "Something went wrong on our side")
    error_id = problem["error_id"]
    assert error_id and error_id in problem["detail"]
    assert problem["request_id"] and response.headers["x-request-id"] == problem["request_id"]
    for leak in ("RuntimeError", "secret", "registry.py", "Traceback"):
        assert leak not in response.text
    [record] = [r for r in caplog.records if error_id in r.getMessage()]
    assert record.exc_info and record.exc_info[0] is RuntimeError, "the traceback is logged"


def test_other_problems_carry_no_error_id(client: TestClient) -> None:
    assert "error_id" not in client.get("/v1/nowhere").json()


# ---- no header names a process -----------------------------------------------------------------


def test_no_answer_names_the_worker_unless_a_test_asks(
    client: TestClient, api_settings: Settings
) -> None:
    answers = [
        client.post("/v1/quotes", json=STONE),
        client.get("/v1/nowhere"),
        client.get("/health"),
        post_json(client, "/v1/quotes/batch", empty_stones(2_000_000)),
    ]
    for response in answers:
        assert "x-worker" not in response.headers, response.request.url
        assert str(os.getpid()) not in str(response.headers)
    api_settings.expose_worker = True  # DIAMOND_EXPOSE_WORKER: the end-to-end tests' switch
    assert client.get("/health").headers["x-worker"] == str(os.getpid())


# ---- storage that is full or read-only -------------------------------------------------------


def sqlite_error(kind: StorageFault, folder: Path) -> sqlite3.Error:
    """A real error from SQLite itself: a full database, or a write to a read-only one."""
    if kind is StorageFault.FULL:
        con = sqlite3.connect(":memory:")
        con.execute("CREATE TABLE t (b)")
        con.execute(f"PRAGMA max_page_count={con.execute('PRAGMA page_count').fetchone()[0]}")
        statement = "INSERT INTO t VALUES (zeroblob(100000))"
    else:
        sqlite3.connect(folder / "ro.sqlite3").execute("CREATE TABLE t (b)").connection.commit()
        con = sqlite3.connect(f"file:{folder / 'ro.sqlite3'}?mode=ro", uri=True)
        statement = "INSERT INTO t VALUES (1)"
    try:
        con.execute(statement)
    except sqlite3.Error as error:
        return error
    raise AssertionError("SQLite wrote")


@pytest.mark.parametrize("kind", list(StorageFault))
def test_storage_faults_are_told_apart_by_their_codes(kind: StorageFault, tmp_path: Path) -> None:
    error = sqlite_error(kind, tmp_path)
    assert storage_fault(error) is kind
    assert storage_fault(OperationalError("INSERT", {}, error)) is kind
    code = errno.ENOSPC if kind is StorageFault.FULL else errno.EROFS
    assert storage_fault(OSError(code, os.strerror(code))) is kind
    # The same words without the code are not enough: decisions are made on codes.
    assert storage_fault(OperationalError("INSERT", {}, Exception(str(error)))) is None
    assert storage_fault(OSError(errno.ENOENT, "No such file")) is None


@pytest.mark.parametrize(
    ("kind", "status", "fragment"),
    [
        (StorageFault.FULL, 507, "storage is full"),
        (StorageFault.READ_ONLY, 503, "storage is read-only"),
    ],
)
def test_a_write_to_full_or_read_only_storage_says_so(
    client: TestClient,
    keys: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    kind: StorageFault,
    status: int,
    fragment: str,
) -> None:
    error = OperationalError("UPDATE champion", {}, sqlite_error(kind, tmp_path))

    def fails(*_: object, **__: object) -> None:
        raise error

    monkeypatch.setattr(client.app.state.services.registry, "promote", fails)
    problem = assert_problem(
        client.post("/v1/models/1/promote", headers=auth(keys)), status, fragment
    )
    assert (
        "cannot be reached" not in problem["detail"] and "nothing was written" in problem["detail"]
    )
    assert client.post("/v1/quotes", json=STONE).status_code == 200, "quotes still work"


def test_an_upload_into_a_database_that_has_filled_up_is_507(
    client: TestClient,
    keys: dict[str, str],
    new_batch: bytes,
) -> None:
    """A real SQLITE_FULL: every connection may not grow the file by a single page."""
    engine = client.app.state.services.store.engine
    with engine.connect() as connection:
        connection.exec_driver_sql("VACUUM")  # no free pages left to reuse
        pages = connection.exec_driver_sql("PRAGMA page_count").scalar()

    @event.listens_for(engine, "connect")
    def no_room(dbapi_connection: sqlite3.Connection, _: object) -> None:
        dbapi_connection.execute(f"PRAGMA max_page_count={pages}")

    engine.dispose()
    response = client.post(
        "/v1/appraisals?retrain=false",
        files={"file": ("new.csv", new_batch, "text/csv")},
        headers=auth(keys),
    )
    assert_problem(response, 507, "The server's storage is full: nothing was written")
    event.remove(engine, "connect", no_room)
    engine.dispose()
    assert client.get("/v1/batches").json()[-1]["filename"] != "new.csv", "nothing was stored"


def test_a_disk_full_while_spooling_a_file_is_507(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_space(*_: object, **__: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(quote_routes, "read_table", no_space)
    csv = "carat,cut,color,clarity\n1.1,Ideal,H,SI2\n"
    response = client.post("/v1/quotes/batch/csv", files={"file": ("s.csv", csv, "text/csv")})
    assert_problem(response, 507, "storage is full")


# ---- a read-only instance folder -----------------------------------------------------------------


def read_only(path: Path) -> str:
    """The URL SQLite opens read-only for every user, root included (chmod does not stop root)."""
    return f"sqlite:///file:{path}?mode=ro&uri=true"


@pytest.fixture
def lock_cannot_be_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A folder where no lock file can be created: open() fails as it does on a read-only
    mount (here with ENOTDIR, which root cannot get round either)."""
    not_a_folder = tmp_path / "not-a-folder"
    not_a_folder.write_text("")
    monkeypatch.setattr(migrate, "lock_file", lambda _: not_a_folder / "diamonds.migrate-lock")


def test_a_read_only_instance_starts_and_serves_quotes(
    api_settings: Settings, tmp_path: Path, lock_cannot_be_written: None
) -> None:
    database = Path(api_settings.resolved_database_url.removeprefix("sqlite:///"))
    keys = make_keys(api_settings.resolved_database_url)
    settings = make_settings(read_only(database), tmp_path / "instance")
    with TestClient(create_app(settings), headers=auth(keys, "reader")) as client:
        assert client.get("/health").json()["status"] == "ok"
        quote = client.post("/v1/quotes", json=STONE)
        assert quote.status_code == 200 and quote.json()["price"] > 0
        assert client.get("/v1/models").status_code == 200
        problem = assert_problem(
            client.post("/v1/models/1/promote", headers=auth(keys)), 503, "storage is read-only"
        )
        assert "make the database and its folder writable" in problem["detail"]


def test_a_read_only_database_that_needs_an_upgrade_says_what_to_do(
    tmp_path: Path, lock_cannot_be_written: None
) -> None:
    empty = tmp_path / "empty.sqlite3"
    sqlite3.connect(empty).close()
    store = Store(read_only(empty))
    with pytest.raises(ReadOnlyUpgradeError, match="folder cannot be written .* run `python -m"):
        store.create_schema()
    store.dispose()


# ---- user text on the dashboard ------------------------------------------------------------


def test_a_file_name_is_shown_as_written_in_the_withdraw_confirmation(
    dashboard_env: Settings, appraisals: pd.DataFrame
) -> None:
    """A stored upload's name went into the confirmation's markdown as it was."""
    name = "**bold** [click](http://evil.example) $x^2$ <b>.csv"
    pipeline = LearningLoop.from_settings(dashboard_env)
    pipeline.ingest(csv_bytes(appraisals.iloc[2000:2100]), name, "expert", retrain=False)
    app = unlock(run(APPRAISALS))
    app.selectbox(key="batch").set_value(2)
    app = click(rerun(app), "withdraw")
    [confirmation] = [m.value for m in app.markdown if "Withdraw batch 2" in m.value]
    assert views.literal(name) in confirmation
    for markup in ("**bold**", "[click](", "$x^2$", "<b>"):
        assert markup not in confirmation
    pipeline.store.dispose()
