"""Every endpoint's success and failure paths through FastAPI's TestClient."""

from __future__ import annotations

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from diamond_model.schema import EXAMPLE_STONE
from tests.app.conftest import API_KEY, wait_for_run

KEY = {"X-API-Key": API_KEY}
STONE = EXAMPLE_STONE


def assert_problem(response, status: int, fragment: str) -> dict:  # noqa: ANN001
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status and body["title"] and body["type"].startswith("/problems/")
    assert fragment in body["detail"], body["detail"]
    return body


# ---- service ----------------------------------------------------------------------------------


def test_health_reports_database_and_model(client: TestClient) -> None:
    assert client.get("/health").json() == {
        "status": "ok",
        "database": True,
        "champion_version": 1,
        "model_loaded": True,
    }


def test_health_on_an_empty_database_is_degraded(empty_client: TestClient) -> None:
    body = empty_client.get("/health").json()
    assert body["status"] == "degraded" and body["model_loaded"] is False


def test_model_in_plain_words(client: TestClient) -> None:
    body = client.get("/v1/model").json()
    assert body["version"] == 1 and body["is_champion"] and body["train_rows"] > 1000
    assert "real prices fell inside the quoted 90% range" in body["summary"][-1]


def test_unknown_path_is_a_problem(client: TestClient) -> None:
    assert_problem(client.get("/v1/nothing"), 404, "No such endpoint or method: GET /v1/nothing")


# ---- quotes -----------------------------------------------------------------------------------


def test_quote_with_interval_and_explanation(client: TestClient) -> None:
    body = client.post("/v1/quotes", json={**STONE, "cut": " ideal "}).json()
    assert body["interval"]["low"] < body["price"] < body["interval"]["high"]
    assert body["interval"]["level"] == 0.9
    explanation = body["explanation"]
    total = explanation["base_price"] + sum(step["dollars"] for step in explanation["steps"])
    assert total == pytest.approx(body["price"], abs=0.005)
    assert explanation["steps"][-1]["price_after"] == body["price"]
    assert body["missing_inputs"] == [] and body["inputs_used"] == "all inputs"


def test_quote_with_missing_measurements(client: TestClient) -> None:
    body = client.post(
        "/v1/quotes", json={k: STONE[k] for k in ("carat", "cut", "color", "clarity")}
    ).json()
    assert body["inputs_used"] == "4Cs only"
    assert body["missing_inputs"] == ["depth", "table", "x", "y", "z"]
    assert "the range is wider" in body["warnings"][0]


@pytest.mark.parametrize(
    ("change", "field", "fragment"),
    [
        (
            {"cut": "Excelent"},
            "cut",
            "use one of 'Fair', 'Good', 'Very Good', 'Premium' or 'Ideal'",
        ),
        ({"carat": 0}, "carat", "greater than 0"),
        ({"carat": "heavy"}, "carat", "valid number"),
        ({"table": 200}, "table", "less than or equal to 100"),
        ({"z": 1.41}, "depth", "depth % disagrees with the measurements"),
    ],
)
def test_quote_rejects_bad_input_with_field_and_reason(
    client: TestClient, change: dict, field: str, fragment: str
) -> None:
    body = assert_problem(client.post("/v1/quotes", json={**STONE, **change}), 422, fragment)
    assert body["errors"][0]["field"] == field


def test_quote_without_required_field(client: TestClient) -> None:
    body = assert_problem(client.post("/v1/quotes", json={"carat": 1.0}), 422, "Field required")
    assert {e["field"] for e in body["errors"]} == {"cut", "color", "clarity"}


def test_quote_before_any_model_is_503(empty_client: TestClient) -> None:
    assert_problem(
        empty_client.post("/v1/quotes", json=STONE), 503, "No price model is trained yet"
    )


def test_batch_reports_bad_stones_in_place(client: TestClient) -> None:
    stones = [
        STONE,
        {**STONE, "cut": "Superb"},
        {"carat": 0.5, "cut": "Good", "color": "E", "clarity": "VS1"},
    ]
    body = client.post("/v1/quotes/batch", json={"stones": stones}).json()
    assert (body["priced"], body["failed"]) == (2, 1)
    results = body["results"]
    assert [r["index"] for r in results] == [0, 1, 2]
    assert results[0]["quote"]["explanation"] is None, "explain=false by default"
    assert results[1]["quote"] is None and "not a cut grade" in results[1]["errors"][0]["reason"]
    single = client.post("/v1/quotes", json=STONE).json()
    assert results[0]["quote"]["price"] == single["price"]


def test_batch_with_explanations(client: TestClient) -> None:
    body = client.post("/v1/quotes/batch", json={"stones": [STONE], "explain": True}).json()
    assert len(body["results"][0]["quote"]["explanation"]["steps"]) == 7


def test_batch_size_limits(client: TestClient, api_settings) -> None:  # noqa: ANN001
    api_settings.max_batch_stones = 2
    assert_problem(
        client.post("/v1/quotes/batch", json={"stones": [STONE] * 3}),
        422,
        "at most 2 stones per request; got 3",
    )
    assert_problem(client.post("/v1/quotes/batch", json={"stones": []}), 422, "at least 1 item")


def test_batch_csv_upload(client: TestClient) -> None:
    csv = "carat;cut;color;clarity\n1,1;Ideal;H;SI2\n0,5;Good;Q;VS1\n0,7;Good;E\n0,7;Good;E;VS1\n"
    response = client.post("/v1/quotes/batch/csv", files={"file": ("stones.csv", csv, "text/csv")})
    body = response.json()
    assert [r["index"] for r in body["results"]] == [2, 3, 4, 5], "file lines"
    assert (body["priced"], body["failed"]) == (2, 2)
    assert "'Q' is not a color grade" in body["results"][1]["errors"][0]["reason"]
    assert "the row has 3 fields" in body["results"][2]["errors"][0]["reason"]


def test_batch_csv_unusable_file(client: TestClient) -> None:
    response = client.post("/v1/quotes/batch/csv", files={"file": ("x.csv", b"", "text/csv")})
    assert_problem(response, 422, "The file is empty")


def test_comparables_are_close_in_weight_and_grades(client: TestClient) -> None:
    params = {"carat": 1.0, "cut": "Ideal", "color": "G", "clarity": "VS2", "limit": 5}
    rows = client.get("/v1/comparables", params=params).json()
    assert 0 < len(rows) <= 5
    assert all(0.8 <= r["carat"] <= 1.25 for r in rows)
    assert [r["distance"] for r in rows] == sorted(r["distance"] for r in rows)
    assert rows[0]["uploaded_at"].endswith("Z") or "+00:00" in rows[0]["uploaded_at"]
    assert_problem(client.get("/v1/comparables", params={**params, "cut": "great"}), 422, "cut")


# ---- data -------------------------------------------------------------------------------------


def upload(client: TestClient, content: bytes, headers: dict | None = None, **params):  # noqa: ANN003, ANN201
    return client.post(
        "/v1/appraisals",
        files={"file": ("batch.csv", content, "text/csv")},
        headers=headers if headers is not None else KEY,
        params=params,
    )


@pytest.fixture
def new_batch(appraisals: pd.DataFrame) -> bytes:
    rows = appraisals.iloc[2000:2300].astype({"color": str})
    rows.loc[rows.index[3], "color"] = "Z"
    return rows.to_csv(index=False).encode()


def test_upload_needs_the_key(client: TestClient, new_batch: bytes) -> None:
    assert_problem(upload(client, new_batch, headers={}), 401, "needs the expert's key")
    assert_problem(upload(client, new_batch, headers={"X-API-Key": "wrong"}), 403, "not valid")


def test_upload_reports_and_refuses_a_second_copy(client: TestClient, new_batch: bytes) -> None:
    response = upload(client, new_batch, uploaded_by="maria")
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["batch"]["rows_accepted"], body["batch"]["rows_rejected"]) == (299, 1)
    assert body["batch"]["uploaded_by"] == "maria"
    assert body["rejections"] == [
        {
            "line": 5,
            "column": "color",
            "value": "Z",
            "reason": "'Z' is not a color grade; use one of J, I, H, G, F, E, D",
        }
    ]
    assert body["training_run_url"] is None, "auto retrain is off in these tests"
    detail = client.get(body["batch_url"]).json()
    assert detail["id"] == 2 and detail["rejections"][0]["line"] == 5
    assert_problem(upload(client, new_batch), 409, "already ingested as batch 2")


def test_upload_of_an_unusable_file(client: TestClient) -> None:
    assert_problem(upload(client, b"carat,cut\n1,Ideal\n"), 422, "Required column(s) missing")


def test_upload_over_the_size_limit(client: TestClient, api_settings, new_batch: bytes) -> None:  # noqa: ANN001
    api_settings.max_upload_bytes = 1_000
    client.app.state.services.store.max_upload_bytes = 1_000
    assert_problem(upload(client, new_batch), 413, "the limit is 1,000")
    huge = b"x" * 200_000
    response = client.post("/v1/quotes/batch/csv", files={"file": ("big.csv", huge, "text/csv")})
    assert_problem(response, 413, "over the limit")


def test_upload_starts_a_retrain_when_asked(client: TestClient, appraisals: pd.DataFrame) -> None:
    batch = appraisals.iloc[2000:3000].to_csv(index=False).encode()
    body = upload(client, batch, retrain="true").json()
    run = wait_for_run(client, body["training_run_url"])
    assert run["trigger"] == "batch 2" and run["status"] in {"promoted", "rejected"}
    assert run["candidate_metrics"]["mape"] > 0 and run["champion_metrics"]["mape"] > 0


def test_batches_and_appraisals_pages(client: TestClient) -> None:
    batches = client.get("/v1/batches").json()
    assert [b["id"] for b in batches] == [1] and batches[0]["rows_accepted"] == 2000
    page = client.get("/v1/appraisals", params={"limit": 3, "offset": 2, "cut": "Ideal"}).json()
    assert page["total"] > 500 and page["limit"] == 3 and len(page["items"]) == 3
    assert all(item["cut"] == "Ideal" for item in page["items"])
    assert client.get("/v1/appraisals", params={"batch_id": 9}).json()["total"] == 0
    assert_problem(client.get("/v1/appraisals", params={"limit": 0}), 422, "limit")
    assert_problem(client.get("/v1/batches/42"), 404, "There is no batch 42")


# ---- models -----------------------------------------------------------------------------------


def test_training_run_lifecycle(client: TestClient) -> None:
    assert_problem(client.post("/v1/training-runs"), 401, "X-API-Key")
    response = client.post("/v1/training-runs", headers=KEY, json={"force": True})
    assert response.status_code == 202
    assert response.headers["location"] == response.json()["url"]
    assert response.json()["status"] == "running"
    run = wait_for_run(client, response.headers["location"])
    assert run["status"] == "promoted" and run["candidate_version"] == 2
    assert "not worse than the champion" in run["message"]
    assert client.get("/v1/model").json()["version"] == 2
    assert [r["id"] for r in client.get("/v1/training-runs").json()][0] == run["id"]
    assert_problem(client.get("/v1/training-runs/999"), 404, "no training run 999")


def test_second_training_run_is_refused_while_one_runs(client: TestClient) -> None:
    store = client.app.state.services.store
    token = store.acquire_lock("retrain", 60)
    assert_problem(
        client.post("/v1/training-runs", headers=KEY), 409, "A retrain is already running"
    )
    store.release_lock("retrain", token)


def test_promote_and_rollback_through_the_api(client: TestClient) -> None:
    run = client.post("/v1/training-runs", headers=KEY, json={"force": True}).json()
    wait_for_run(client, run["url"])
    assert client.post("/v1/quotes", json=STONE).json()["model_version"] == 2
    promoted = client.post("/v1/models/1/promote", headers=KEY)
    assert promoted.status_code == 200 and promoted.json()["is_champion"]
    assert client.post("/v1/quotes", json=STONE).json()["model_version"] == 1, "served at once"
    versions = client.get("/v1/models").json()
    assert [(v["version"], v["is_champion"]) for v in versions] == [(1, True), (2, False)]
    assert_problem(client.post("/v1/models/7/promote", headers=KEY), 404, "no model version 7")
    assert_problem(
        client.post("/v1/models/1/promote", headers={"X-API-Key": "x"}), 403, "not valid"
    )


def test_reads_can_require_the_key(client: TestClient, api_settings) -> None:  # noqa: ANN001
    api_settings.api_require_key_for_reads = True
    assert_problem(client.post("/v1/quotes", json=STONE), 401, "X-API-Key")
    assert client.post("/v1/quotes", json=STONE, headers=KEY).status_code == 200
    assert client.get("/health").status_code == 200, "liveness stays open"
