"""A refused champion artefact through the API: quotes keep coming from the last good model,
health and readiness say degraded with the reason, a pin to the refused version is a 409."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient

from diamond_model.data.schema import EXAMPLE_STONE
from diamond_model.pricing import artefact
from tests.helpers import add_version, payload_bytes, point_champion_at


def test_a_tampered_champion_leaves_quotes_flowing_and_health_degraded(
    client: TestClient, api_settings, keys: dict[str, str], tmp_path
) -> None:
    services = client.app.state.services
    marker = tmp_path / "ran"
    evil = payload_bytes(marker)
    version = add_version(services.pipeline, evil, 3, artefact.digest(evil))
    point_champion_at(services.pipeline, version)
    deadline = time.monotonic() + 20
    while services.cache.refused is None and time.monotonic() < deadline:
        time.sleep(0.05)
    headers = {"X-API-Key": keys["expert"]}
    quote = client.post("/v1/quotes", json=EXAMPLE_STONE, headers=headers)
    assert quote.status_code == 200 and quote.json()["model_version"] == 1
    health = client.get("/health").json()
    assert health["status"] == "degraded" and health["champion_version"] == 1
    assert f"version {version} is refused" in health["detail"]
    ready = client.get("/health/ready").json()
    assert ready["detail"].startswith("degraded:") and f"version {version}" in ready["detail"]
    pinned = client.post(f"/v1/quotes?model_version={version}", json=EXAMPLE_STONE, headers=headers)
    assert pinned.status_code == 409, pinned.text
    assert "refused" in pinned.json()["detail"]
    assert not marker.exists()
