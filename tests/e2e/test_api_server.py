"""The API under a real uvicorn: one worker on SQLite, two workers sharing PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pandas as pd
import pytest

from diamond_model.pipeline import Pipeline
from diamond_model.settings import Settings
from tests.app.conftest import API_KEY, wait_for_run
from tests.conftest import _postgres_database
from tests.e2e.server import api_server

KEY = {"X-API-Key": API_KEY}
STONE = {"carat": 0.9, "cut": "Very Good", "color": "F", "clarity": "VS2"}


def test_real_server_prices_ingests_and_retrains(
    server_env: dict[str, str], appraisals: pd.DataFrame
) -> None:
    with api_server(server_env) as base, httpx.Client(base_url=base, timeout=30) as client:
        quote = client.post("/v1/quotes", json=STONE)
        assert quote.status_code == 200 and quote.json()["model_version"] == 1
        assert (
            client.get("/docs").status_code == 200 and "swagger" in client.get("/docs").text.lower()
        )
        batch = appraisals.iloc[2000:3500].to_csv(index=False).encode()
        upload = client.post(
            "/v1/appraisals", files={"file": ("new.csv", batch, "text/csv")}, headers=KEY
        )
        assert upload.status_code == 201, upload.text
        run_url = upload.json()["training_run_url"]
        assert run_url, "DIAMOND_AUTO_RETRAIN=true starts a retrain after the upload"
        # Quotes keep flowing while the candidate trains.
        during = [client.post("/v1/quotes", json=STONE).status_code for _ in range(20)]
        assert set(during) == {200}
        run = wait_for_run(client, run_url)
        assert run["status"] in {"promoted", "rejected"} and run["candidate_metrics"]
        expected = 2 if run["promoted"] else 1
        assert client.post("/v1/quotes", json=STONE).json()["model_version"] == expected
        problem = client.post("/v1/quotes", json={**STONE, "clarity": "VVS3"})
        assert problem.status_code == 422
        assert problem.headers["content-type"] == "application/problem+json"


@pytest.mark.postgres
def test_two_workers_on_postgresql_serve_the_champion_promoted_through_either(
    appraisals: pd.DataFrame, tmp_path
) -> None:  # noqa: ANN001
    for url in _postgres_database():
        settings = Settings(instance_dir=tmp_path, database_url=url, auto_retrain=False)
        pipeline = Pipeline.from_settings(settings)
        pipeline.store.create_schema()
        pipeline.store.ingest(appraisals.iloc[:1500].to_csv(index=False).encode(), "a.csv")
        pipeline.retrain()
        pipeline.store.ingest(appraisals.iloc[1500:3000].to_csv(index=False).encode(), "b.csv")
        pipeline.retrain(force=True)
        pipeline.store.dispose()
        env = {
            "DIAMOND_DATABASE_URL": url,
            "DIAMOND_ACCESS_CODE": API_KEY,
            "DIAMOND_INSTANCE_DIR": str(tmp_path),
        }
        with api_server(env, workers=2) as base:

            def spread(until: Callable[[list[tuple[str, int]]], bool]) -> list[tuple[str, int]]:
                """Quotes on fresh connections (the kernel hands each to either worker) until
                `until` holds for the answers seen, or 300 requests."""
                seen: list[tuple[str, int]] = []
                while len(seen) < 300 and not until(seen):
                    with httpx.Client(base_url=base, timeout=30) as one:
                        response = one.post("/v1/quotes", json=STONE)
                        seen.append(
                            (response.headers["x-worker"], response.json()["model_version"])
                        )
                return seen

            def both_workers(seen: list[tuple[str, int]]) -> bool:
                return len({worker for worker, _ in seen}) == 2 and len(seen) >= 20

            before = spread(both_workers)
            assert both_workers(before), "two workers answer"
            assert {version for _, version in before} == {2}
            with httpx.Client(base_url=base, timeout=30) as client:
                promoted = client.post("/v1/models/1/promote", headers=KEY)
            assert promoted.status_code == 200
            promoter = promoted.headers["x-worker"]
            after = spread(lambda seen, p=promoter: sum(worker != p for worker, _ in seen) >= 5)
            assert sum(worker != promoter for worker, _ in after) >= 5, "the other worker answered"
            assert {version for _, version in after} == {1}, "both workers serve the new champion"
