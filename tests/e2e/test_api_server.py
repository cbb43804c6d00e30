"""The API under a real uvicorn: one worker on SQLite, two workers sharing PostgreSQL (a promotion
through either is served by both; limits and usage are exact across them), and the guards
against oversized bodies on a real socket."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pandas as pd
import pytest

from diamond_model.keys import KeyStore
from diamond_model.kinds import Scope
from diamond_model.store import Store
from tests.app.conftest import make_keys, wait_for_run
from tests.conftest import csv_bytes
from tests.e2e.conftest import server_environment
from tests.e2e.server import api_server

STONE = {"carat": 0.9, "cut": "Very Good", "color": "F", "clarity": "VS2"}


def test_real_server_prices_ingests_and_retrains(
    server_env: dict[str, str], server_keys: dict[str, str], appraisals: pd.DataFrame
) -> None:
    expert = {"X-API-Key": server_keys["expert"]}
    with api_server(server_env) as base, httpx.Client(base_url=base, timeout=60) as client:
        quote = client.post("/v1/quotes", json=STONE)
        assert quote.status_code == 200 and quote.json()["model_version"] == 1
        docs = client.get("/docs")
        assert docs.status_code == 200 and "/docs-assets/swagger-ui-bundle.js" in docs.text
        upload = client.post(
            "/v1/appraisals",
            files={"file": ("new.csv", csv_bytes(appraisals.iloc[2000:3500]), "text/csv")},
            headers=expert,
        )
        assert upload.status_code == 201, upload.text
        run_url = upload.json()["training_run_url"]
        assert run_url, "DIAMOND_AUTO_RETRAIN=true starts a retrain after the upload"
        during = [client.post("/v1/quotes", json=STONE).status_code for _ in range(20)]
        assert set(during) == {200}, "quotes keep flowing while the candidate trains"
        run = wait_for_run(client, run_url)
        assert run["status"] in {"promoted", "rejected"} and run["candidate_metrics"]
        expected = 2 if run["promoted"] else 1
        deadline = time.monotonic() + 3
        while client.post("/v1/quotes", json=STONE).json()["model_version"] != expected:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        problem = client.post("/v1/quotes", json={**STONE, "clarity": "VVS3"})
        assert problem.status_code == 422
        assert problem.headers["content-type"] == "application/problem+json"


def test_an_oversized_chunked_body_gets_413_and_the_connection_is_closed(
    server_env: dict[str, str],
) -> None:
    server_env["DIAMOND_MAX_UPLOAD_BYTES"] = "100000"
    with api_server(server_env) as base:
        host, port = base.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(
                b"POST /v1/quotes/batch/csv HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n"
            )
            chunk = b"x" * 65_536
            sent, answer = 0, b""
            sock.settimeout(0.5)
            for _ in range(2_000):  # up to 131 MB if the server kept reading
                try:
                    sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                    sent += len(chunk)
                except (BrokenPipeError, ConnectionResetError):
                    break
                try:
                    answer += sock.recv(65_536)
                    if answer:
                        break
                except TimeoutError:
                    continue
            sock.settimeout(5)
            try:
                while data := sock.recv(65_536):
                    answer += data
            except (ConnectionResetError, TimeoutError):
                pass
        assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
        assert b"connection: close" in answer.lower()
        assert sent < 2_000_000, f"the server stopped reading after {sent:,} bytes"


@pytest.mark.postgres
def test_two_workers_on_postgresql_share_the_champion_the_limits_and_the_usage(
    seeded_copy, tmp_path: Path
) -> None:
    url = seeded_copy("postgresql")
    keys = make_keys(url)
    store = Store(url)
    client_key, _ = KeyStore(store).create(
        "quota", frozenset({Scope.QUOTE}), stones_per_day=30, requests_per_minute=40
    )
    store.dispose()
    env = server_environment(url, tmp_path)
    with api_server(env, workers=2) as base:

        def spread(until: Callable[[list[tuple[str, int]]], bool]) -> list[tuple[str, int]]:
            """Quotes on fresh connections (the kernel hands each to either worker) until
            `until` holds for the answers seen, or 300 requests."""
            seen: list[tuple[str, int]] = []
            while len(seen) < 300 and not until(seen):
                with httpx.Client(base_url=base, timeout=30) as one:
                    response = one.post("/v1/quotes", json=STONE)
                    seen.append((response.headers["x-worker"], response.json()["model_version"]))
            return seen

        def both_workers(seen: list[tuple[str, int]]) -> bool:
            return len({worker for worker, _ in seen}) == 2 and len(seen) >= 20

        before = spread(both_workers)
        assert both_workers(before), "two workers answer"
        with httpx.Client(base_url=base, timeout=60) as client:
            run = client.post(
                "/v1/training-runs", json={"force": True}, headers={"X-API-Key": keys["expert"]}
            )
            assert wait_for_run(client, run.json()["url"])["status"] == "promoted"
            promoted = client.post("/v1/models/1/promote", headers={"X-API-Key": keys["expert"]})
        assert promoted.status_code == 200
        time.sleep(1.5)  # the watchers re-read the champion every second
        after = spread(lambda seen: len({w for w, _ in seen}) == 2 and len(seen) >= 20)
        assert {version for _, version in after} == {1}, "both workers serve the new champion"

        # 60 single-stone quotes at once on fresh connections: exactly 30 stones are served.
        def one_quote(_: int) -> tuple[int, str]:
            with httpx.Client(base_url=base, timeout=30) as one:
                response = one.post("/v1/quotes", json=STONE, headers={"X-API-Key": client_key})
                return response.status_code, response.headers["x-worker"]

        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(one_quote, range(60)))
        statuses = [status for status, _ in answers]
        assert statuses.count(200) == 30 and statuses.count(429) == 30, statuses
        assert len({worker for _, worker in answers}) == 2, "both workers took part"

        # Usage is exact: every request, stone and error of the 'client' key, across workers.
        def client_quote(k: int) -> int:
            with httpx.Client(base_url=base, timeout=30) as one:
                body = STONE if k % 10 else {**STONE, "cut": "Superb"}
                return one.post(
                    "/v1/quotes", json=body, headers={"X-API-Key": keys["client"]}
                ).status_code

        with ThreadPoolExecutor(8) as pool:
            codes = list(pool.map(client_quote, range(100)))
        assert codes.count(200) == 90 and codes.count(422) == 10
        time.sleep(3)  # each worker flushes its counts every two seconds
        with httpx.Client(base_url=base, timeout=30) as client:
            usage = client.get("/v1/usage", headers={"X-API-Key": keys["client"]}).json()
        totals = [sum(h[k] for h in usage["hours"]) for k in ("requests", "stones", "errors")]
        assert totals == [100, 90, 10], "the usage request is counted once it is answered"
