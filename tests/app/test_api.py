"""Every endpoint's success and failure paths through FastAPI's TestClient: quotes and their
records, keys and scopes, limits, data and models, and the guards against abuse."""

from __future__ import annotations

import asyncio
import json
import logging
import time

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from diamond_model.data.schema import EXAMPLE_STONE
from diamond_model.serving.keys import KeyStore
from diamond_model.storage import lease
from tests.helpers import NO_KEY, assert_problem, auth, csv_bytes, wait_for_run

STONE = EXAMPLE_STONE


# ---- service ----------------------------------------------------------------------------------


def test_health_from_memory_liveness_and_readiness(client: TestClient) -> None:
    body = client.get("/health").json()
    assert body["status"] == "ok" and body["champion_version"] == 1 and body["model_loaded"]
    assert client.get("/health/live").json() == {"status": "alive"}
    assert client.get("/health/ready").json() == {"ready": True, "detail": "database reachable"}


def test_health_on_an_empty_database_is_degraded(empty_client: TestClient) -> None:
    body = empty_client.get("/health").json()
    assert body["status"] == "degraded" and body["model_loaded"] is False


def test_unknown_path_is_a_problem(client: TestClient) -> None:
    assert_problem(client.get("/v1/nothing"), 404, "No such endpoint or method: GET /v1/nothing")


def test_docs_load_their_scripts_from_this_server(client: TestClient) -> None:
    for page, script in (("/docs", "swagger-ui-bundle.js"), ("/redoc", "redoc.standalone.js")):
        html = client.get(page).text
        assert f"/docs-assets/{script}" in html and "cdn" not in html.lower()
        asset = client.get(f"/docs-assets/{script}")
        assert asset.status_code == 200 and len(asset.content) > 100_000


# ---- quotes -----------------------------------------------------------------------------------


def test_quote_with_range_confidence_market_and_explanation(client: TestClient) -> None:
    body = client.post("/v1/quotes", json={**STONE, "cut": " ideal "}).json()
    assert body["interval"]["low"] < body["price"] < body["interval"]["high"]
    assert body["confidence"]["level"] in ("high", "medium") and body["confidence"]["reasons"]
    assert body["market"] == {"period": "2026-01", "level_percent": 0.0}
    assert body["price_per_carat"] == pytest.approx(body["price"] / 1.1, abs=0.01)
    explanation = body["explanation"]
    assert [s["feature"] for s in explanation["steps"][:4]] == ["size", "cut", "color", "clarity"]
    assert explanation["base_stone"].startswith("a typical stone in our appraisals")
    total = explanation["base_price"] + sum(step["dollars"] for step in explanation["steps"])
    assert round(total, 2) == body["price"] == explanation["steps"][-1]["price_after"]
    size = explanation["steps"][0]
    assert [p["feature"] for p in size["parts"]] == ["carat", "x", "y", "z"]
    assert round(sum(p["dollars"] for p in size["parts"]), 2) == size["dollars"]


def test_a_conflicting_stone_is_priced_from_the_4cs_with_a_warning(client: TestClient) -> None:
    stone = {"carat": 1.0, "cut": "Very Good", "color": "G", "clarity": "VS1"}
    conflicting = client.post(
        "/v1/quotes", json={**stone, "depth": 62, "table": 57, "x": 6.10, "y": 6.15, "z": 3.80}
    ).json()
    plain = client.post("/v1/quotes", json=stone).json()
    assert conflicting["price"] == plain["price"]
    assert conflicting["set_aside"] == ["x", "y", "z"] and conflicting["implied_carat"] == 0.87
    assert conflicting["confidence"]["level"] == "medium"
    assert any("imply 0.87 ct" in w for w in conflicting["warnings"])
    # The same question the counter asks, machine-readable: both figures, and the words.
    conflict = conflicting["carat_conflict"]
    assert (conflict["carat"], conflict["implied_carat"]) == (1.0, 0.87)
    assert "use 0.87 ct, or keep 1 ct and ignore the millimetres" in conflict["message"]
    assert plain["carat_conflict"] is None and plain["indicative"] is False
    answered = client.post(
        "/v1/quotes", json={**stone, "carat": 0.87, "x": 6.10, "y": 6.15, "z": 3.80}
    )
    assert answered.json()["carat_conflict"] is None, "the implied carat answers the question"


def test_an_extrapolated_stone_is_marked_indicative(client: TestClient) -> None:
    body = client.post(
        "/v1/quotes", json={"carat": 2.3, "cut": "Ideal", "color": "D", "clarity": "IF"}
    ).json()
    assert body["indicative"] is True and body["confidence"]["level"] == "low"


def test_every_quote_is_recorded_and_only_its_own_key_reads_it(
    client: TestClient, keys: dict[str, str]
) -> None:
    mine = auth(keys, "client")
    body = client.post("/v1/quotes", json=STONE, headers=mine).json()
    record = client.get(f"/v1/quotes/{body['quote_id']}", headers=mine).json()
    assert record["stone"]["carat"] == 1.1 and record["model_version"] == 1
    assert record["quote"]["price"] == body["price"]
    assert record["quote"]["explanation"] == body["explanation"]
    services = client.app.state.services
    services.quotes.flush()
    assert services.quotes.count() >= 1
    # Another client's key, and a call without one, are told the same as for a made-up id.
    missing = assert_problem(client.get("/v1/quotes/not-a-quote", headers=mine), 404, "no quote")
    other = client.get(f"/v1/quotes/{body['quote_id']}", headers=auth(keys, "limited"))
    anonymous = client.get(f"/v1/quotes/{body['quote_id']}")
    for answer in (other, anonymous):
        found = assert_problem(answer, 404, "There is no quote")
        assert found["title"] == missing["title"]
    operator = client.get(f"/v1/quotes/{body['quote_id']}", headers=auth(keys, "expert"))
    assert operator.status_code == 200, "the operator's admin key reads every record"


def test_a_quote_is_reproduced_with_its_model_version_after_a_promotion(
    client: TestClient, keys: dict[str, str]
) -> None:
    before = client.post("/v1/quotes", json=STONE).json()
    run = client.post("/v1/training-runs", headers=auth(keys), json={"force": True}).json()
    assert wait_for_run(client, run["url"])["status"] == "promoted"
    services = client.app.state.services
    services.cache.refresh()
    after = client.post("/v1/quotes", json=STONE).json()
    assert after["model_version"] == 2
    again = client.post("/v1/quotes", json=STONE, params={"model_version": 1}).json()
    assert again["model_version"] == 1
    assert (again["price"], again["interval"]) == (before["price"], before["interval"])
    assert_problem(
        client.post("/v1/quotes", json=STONE, params={"model_version": 9}),
        404,
        "never priced quotes",
    )


@pytest.mark.parametrize(
    ("change", "field", "fragment"),
    [
        (
            {"cut": "Excelent"},
            "cut",
            "use one of 'Fair', 'Good', 'Very Good', 'Premium' or 'Ideal'",
        ),
        ({"carat": 0}, "carat", "greater than or equal to 0.001"),
        ({"carat": "heavy"}, "carat", "must be a number"),
        ({"carat": True}, "carat", "true/false and text are not numbers"),
        ({"x": False}, "x", "must be a number"),
    ],
)
def test_quote_rejects_bad_input_with_field_and_reason(
    client: TestClient, change: dict, field: str, fragment: str
) -> None:
    body = assert_problem(client.post("/v1/quotes", json={**STONE, **change}), 422, fragment)
    assert body["errors"][0]["field"] == field


def test_a_lone_surrogate_is_a_422_not_a_500(client: TestClient) -> None:
    body = '{"carat": 1.1, "cut": "\\ud800", "color": "H", "clarity": "SI2"}'
    response = client.post("/v1/quotes", content=body, headers={"content-type": "application/json"})
    problem = assert_problem(response, 422, "cut")
    assert problem["errors"][0]["field"] == "cut"


@pytest.mark.parametrize(
    ("content", "headers"),
    [
        (b"carat=1", {"content-type": "text/plain"}),
        (b"not json", {}),
        (b"[1, 2]", {"content-type": "application/json"}),
    ],
)
def test_a_body_that_is_not_a_json_object_gets_a_readable_problem(
    client: TestClient, content: bytes, headers: dict
) -> None:
    body = assert_problem(
        client.post("/v1/quotes", content=content, headers=headers), 422, "must be a JSON object"
    )
    assert body["errors"][0]["field"] == "body" and "b'" not in response_text(body)


def response_text(body: dict) -> str:
    """What the problem says (not its request id, whose hex may hold "b'" in a repr)."""
    return str({k: v for k, v in body.items() if k not in ("request_id", "instance")})


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
    assert [r["position"] for r in results] == [0, 1, 2] and results[0]["line"] is None
    assert results[0]["quote"]["explanation"] is None, "explain=false by default"
    assert results[1]["quote"] is None and "not a cut grade" in results[1]["errors"][0]["reason"]
    single = client.post("/v1/quotes", json=STONE).json()
    assert results[0]["quote"]["price"] == single["price"]
    assert results[0]["quote"]["quote_id"] and results[2]["quote"]["quote_id"]


def test_the_batch_limit_comes_from_the_settings(client: TestClient, api_settings) -> None:
    api_settings.max_batch_stones = 2
    assert_problem(
        client.post("/v1/quotes/batch", json={"stones": [STONE] * 3}),
        422,
        "at most 2 stones per request; got 3",
    )
    api_settings.max_batch_stones = 20_000
    big = client.post(
        "/v1/quotes/batch",
        json={"stones": [{"carat": 0.5, "cut": "Good", "color": "E", "clarity": "VS1"}] * 12_000},
    )
    assert big.status_code == 200 and big.json()["priced"] == 12_000
    assert_problem(client.post("/v1/quotes/batch", json={"stones": []}), 422, "at least 1 item")


def test_batch_csv_gives_positions_and_file_lines(client: TestClient) -> None:
    csv = "carat;cut;color;clarity\n1,1;Ideal;H;SI2\n0,5;Good;Q;VS1\n0,7;Good;E\n\n0,7;Good;E;VS1\n"
    body = client.post(
        "/v1/quotes/batch/csv", files={"file": ("stones.csv", csv, "text/csv")}
    ).json()
    assert [r["line"] for r in body["results"]] == [2, 3, 4, 6]
    assert [r["position"] for r in body["results"]] == [0, 1, 2, 3]
    assert (body["priced"], body["failed"]) == (2, 2)
    assert "'Q' is a colour grade below J" in body["results"][1]["errors"][0]["reason"]
    assert "the row has 3 fields" in body["results"][2]["errors"][0]["reason"]


def test_a_csv_over_the_batch_limit_is_refused_before_parsing(
    client: TestClient, api_settings
) -> None:
    api_settings.max_batch_stones = 100
    rows = "carat,cut,color,clarity\n" + "0.5,Good,E,VS1\n" * 101
    response = client.post("/v1/quotes/batch/csv", files={"file": ("big.csv", rows, "text/csv")})
    assert_problem(response, 413, "at most 100 stones per request")


def test_comparables_are_close_in_weight_and_grades(client: TestClient) -> None:
    params = {"carat": 1.0, "cut": "Ideal", "color": "G", "clarity": "VS2", "limit": 5}
    rows = client.get("/v1/comparables", params=params).json()
    assert 0 < len(rows) <= 5
    assert all(0.8 <= r["carat"] <= 1.25 for r in rows)
    assert [r["distance"] for r in rows] == sorted(r["distance"] for r in rows)
    assert rows[0]["appraised_on"] == "2026-01-01"
    assert_problem(client.get("/v1/comparables", params={**params, "cut": "great"}), 422, "cut")


def test_market_index_and_serving_model(client: TestClient) -> None:
    index = client.get("/v1/market-index").json()
    assert index["model_version"] == 1 and index["quotes_use"] == "2026-01"
    assert index["periods"][0]["appraisals"] > 1000
    model = client.get("/v1/model").json()
    assert model["version"] == 1 and model["market_period"] == "2026-01"
    assert "real prices fell inside the quoted 90% range" in model["summary"][-1]


def test_the_serving_model_reads_a_new_batch_before_any_training(
    client: TestClient, keys: dict[str, str], appraisals: pd.DataFrame
) -> None:
    """Live accuracy: a market move shows in GET /v1/model as soon as the batch is stored."""
    before = client.get("/v1/model").json()
    moved = appraisals.iloc[2000:2400].assign(price=lambda f: (f["price"] * 1.15).round())
    upload = client.post(
        "/v1/appraisals",
        files={"file": ("moved.csv", csv_bytes(moved), "text/csv")},
        headers=auth(keys),
    )
    assert upload.status_code == 201 and upload.json()["training_run_url"] is None
    model = client.get("/v1/model").json()
    assert model["version"] == 1 and model["metrics"] == before["metrics"], "no retrain yet"
    latest = model["latest_batches"][-1]
    assert latest["batch_id"] == upload.json()["batch"]["id"] and latest["appraisals"] == 400
    assert 12 < latest["level_percent"] < 18, latest
    assert latest["coverage"] < before["metrics"]["coverage"] - 20, (latest, before["metrics"])


# ---- keys, scopes, limits ---------------------------------------------------------------------


def test_scopes_decide_what_a_key_may_do(client: TestClient, keys: dict[str, str]) -> None:
    batch = ("b.csv", b"carat,cut,color,clarity,price\n1.0,Ideal,G,VS2,6000\n", "text/csv")
    assert_problem(
        client.post("/v1/appraisals", files={"file": batch}, headers=NO_KEY), 401, "'data:write'"
    )
    assert_problem(
        client.post("/v1/appraisals", files={"file": batch}, headers=auth(keys, "client")),
        403,
        "The key 'client' may do: quote. This needs 'data:write'",
    )
    assert (
        client.post("/v1/appraisals", files={"file": batch}, headers=auth(keys)).status_code == 201
    )
    assert_problem(
        client.post("/v1/models/1/promote", headers=auth(keys, "client")), 403, "'models:write'"
    )
    assert client.post("/v1/quotes", json=STONE, headers=auth(keys, "client")).status_code == 200


def test_revoked_and_unknown_keys_are_refused_with_what_to_do(
    client: TestClient, keys: dict[str, str], api_settings
) -> None:
    KeyStore(client.app.state.services.store).revoke("client")
    client.app.state.services.ring.refresh()
    assert_problem(
        client.post("/v1/quotes", json=STONE, headers=auth(keys, "client")), 403, "was revoked on"
    )
    response = client.post("/v1/quotes", json=STONE, headers={"X-API-Key": "dk_00000000_nope"})
    assert_problem(response, 401, "not a key of this server")
    assert response.headers["www-authenticate"] == "APIKey"


def test_the_dashboard_code_is_not_an_api_key(client: TestClient, api_settings) -> None:
    code = api_settings.access_code.get_secret_value()
    assert_problem(client.post("/v1/training-runs", headers={"X-API-Key": code}), 401, "not a key")


def test_repeated_wrong_keys_are_slowed_down(client: TestClient, caplog) -> None:
    wrong = {"X-API-Key": "dk_deadbeef_guess"}
    statuses = [client.post("/v1/training-runs", headers=wrong).status_code for _ in range(11)]
    assert statuses == [401] * 10 + [429]
    response = client.post("/v1/training-runs", headers=wrong)
    problem = assert_problem(response, 429, "Too many wrong keys")
    assert 0 < int(response.headers["retry-after"]) <= 600 and problem["status"] == 429
    assert "doubles the wait" in problem["detail"]
    assert client.post("/v1/quotes", json=STONE).status_code == 200, "a valid key is not slowed"
    assert "failed key or access code from testclient" in caplog.text
    assert "guess" not in caplog.text, "the secret is never logged"


def test_limits_answer_429_with_retry_after(client: TestClient, keys: dict[str, str]) -> None:
    limited = auth(keys, "limited")  # 4 requests per minute, 5 stones per day
    small = {"carat": 0.5, "cut": "Good", "color": "E", "clarity": "VS1"}
    assert (
        client.post("/v1/quotes/batch", json={"stones": [small] * 4}, headers=limited).status_code
        == 200
    )
    over = client.post("/v1/quotes/batch", json={"stones": [small] * 2}, headers=limited)
    assert_problem(over, 429, "has used its 5 stones per day")
    assert 0 < int(over.headers["retry-after"]) <= 86_400
    fifth = client.post("/v1/quotes", json=small, headers=limited)
    assert fifth.status_code == 200, fifth.text
    assert_problem(client.post("/v1/quotes", json=small, headers=limited), 429, "5 stones per day")
    assert_problem(client.get("/v1/market-index", headers=limited), 429, "4 requests per minute")
    minute = client.get("/v1/market-index", headers=limited)
    assert_problem(minute, 429, "4 requests per minute")
    assert 0 < int(minute.headers["retry-after"]) <= 60


def test_refused_requests_are_counted_apart_and_their_stones_are_not_charged(
    client: TestClient, keys: dict[str, str]
) -> None:
    limited = auth(keys, "limited")  # 4 requests per minute, 5 stones per day
    small = {"carat": 0.5, "cut": "Good", "color": "E", "clarity": "VS1"}
    assert client.post("/v1/quotes/batch", json={"stones": [small] * 3}, headers=limited).is_success
    over = client.post("/v1/quotes/batch", json={"stones": [small] * 3}, headers=limited)
    assert over.status_code == 429, "3 more stones would pass the day's 5"
    assert client.get("/v1/usage", headers=limited).status_code == 200
    assert client.get("/v1/usage", headers=limited).status_code == 200
    assert client.get("/v1/usage", headers=limited).status_code == 429, "the minute's 5th"
    client.app.state.services.meter.flush()
    hour = client.app.state.services.keys.usage("limited").iloc[-1]
    assert (hour["requests"], hour["stones"], hour["errors"], hour["refused"]) == (5, 3, 0, 2)


def test_usage_counts_requests_stones_and_errors(client: TestClient, keys: dict[str, str]) -> None:
    headers = auth(keys, "client")
    for _ in range(3):
        assert client.post("/v1/quotes", json=STONE, headers=headers).status_code == 200
    client.post("/v1/quotes/batch", json={"stones": [STONE] * 7}, headers=headers)
    assert (
        client.post("/v1/quotes", json={**STONE, "cut": "Superb"}, headers=headers).status_code
        == 422
    )
    usage = client.get("/v1/usage", headers=headers).json()
    assert usage["key"] == "client" and usage["scopes"] == ["quote"]
    hour = usage["hours"][-1]
    assert (hour["requests"], hour["stones"], hour["errors"]) == (5, 10, 1)
    assert_problem(client.get("/v1/usage", headers=NO_KEY), 401, "client key")


def test_every_route_needs_a_key_unless_the_operator_opens_reads(
    client: TestClient, api_settings, keys: dict[str, str]
) -> None:
    how = "keys create NAME --scopes quote"
    assert_problem(client.post("/v1/quotes", json=STONE, headers=NO_KEY), 401, how)
    assert_problem(client.get("/v1/market-index", headers=NO_KEY), 401, "X-API-Key")
    assert_problem(client.get("/v1/models", headers=NO_KEY), 401, "X-API-Key")
    assert_problem(client.get("/v1/batches", headers=NO_KEY), 401, "'data:read'")
    assert_problem(client.get("/v1/appraisals", headers=NO_KEY), 401, "'data:read'")
    assert client.post("/v1/quotes", json=STONE, headers=auth(keys, "client")).status_code == 200
    assert_problem(client.get("/v1/appraisals", headers=auth(keys, "client")), 403, "data:read")
    assert client.get("/v1/appraisals", headers=auth(keys, "reader")).status_code == 200
    assert client.get("/health/live", headers=NO_KEY).status_code == 200, "liveness stays open"

    api_settings.api_open_reads = True  # a shop's own counter on a private network
    assert client.post("/v1/quotes", json=STONE, headers=NO_KEY).status_code == 200
    assert client.get("/v1/models", headers=NO_KEY).status_code == 200
    assert_problem(client.get("/v1/appraisals", headers=NO_KEY), 401, "'data:read'")
    assert_problem(client.get("/v1/batches", headers=NO_KEY), 401, "'data:read'")
    near = {"carat": 1.0, "cut": "Ideal", "color": "G", "clarity": "VS1"}
    assert_problem(client.get("/v1/comparables", params=near, headers=NO_KEY), 401, "stored")


def test_comparables_count_against_the_keys_daily_stones(
    client: TestClient, keys: dict[str, str]
) -> None:
    """Stored prices are never a free bulk download: each comparable asked for is a stone."""
    near = {"carat": 1.0, "cut": "Ideal", "color": "G", "clarity": "VS1", "limit": 50}
    headers = auth(keys, "limited")
    allowed = client.get("/v1/usage", headers=headers).json()["stones_left_today"]
    for _ in range(allowed // 50):
        assert client.get("/v1/comparables", params=near, headers=headers).status_code == 200
    assert_problem(client.get("/v1/comparables", params=near, headers=headers), 429, "stones")


# ---- data -------------------------------------------------------------------------------------


def upload(client: TestClient, content: bytes, headers: dict, **params):
    return client.post(
        "/v1/appraisals",
        files={"file": ("batch.csv", content, "text/csv")},
        headers=headers,
        params=params,
    )


def test_upload_previews_stores_and_a_second_copy_is_a_no_op(
    client: TestClient, keys: dict[str, str], new_batch: bytes
) -> None:
    dry = upload(client, new_batch, auth(keys), dry_run="true").json()
    assert dry["stored"] is False and dry["preview"]["rows_accepted"] == 299
    assert client.get("/v1/batches").json()[-1]["id"] == 1, "a dry run stores nothing"
    response = upload(client, new_batch, auth(keys), uploaded_by="maria")
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["batch"]["rows_accepted"], body["batch"]["rows_rejected"]) == (299, 1)
    assert body["batch"]["uploaded_by"] == "maria (expert)"
    assert body["preview"]["rejections"] == [
        {
            "line": 5,
            "column": "color",
            "value": "Z",
            "reason": (
                "'Z' is a colour grade below J (more tint), beyond these appraisals (J to D): "
                "the model cannot price it honestly; ask the expert"
            ),
        }
    ]
    assert body["preview"]["set_aside"][0]["line"] == 7
    assert any(
        "what the current model (v1) quotes" in line for line in body["preview"]["sentences"]
    )
    assert body["preview"]["verdict"] == "consistent"
    detail = client.get(body["batch_url"]).json()
    assert detail["id"] == 2 and detail["rejections"][0]["line"] == 5
    assert detail["set_aside"][0]["column"] == "x"
    again = upload(client, new_batch, auth(keys))
    assert again.status_code == 201 and again.json()["stored"] is False
    assert "Already stored as batch 2" in again.json()["training_note"]


def test_withdraw_and_restore_through_the_api(
    client: TestClient, keys: dict[str, str], new_batch: bytes
) -> None:
    upload(client, new_batch, auth(keys))
    body = client.post("/v1/batches/2/withdraw", headers=auth(keys), json={"note": "typo"}).json()
    assert body["withdrawn_at"] is not None
    assert client.get("/v1/appraisals").json()["total"] == 2000
    restored = client.post("/v1/batches/2/restore", headers=auth(keys)).json()
    assert restored["withdrawn_at"] is None
    # 299 stored; a suspect price among them is held for review, out of what is in use.
    assert restored["rows_accepted"] == 299 and restored["rows_held"] <= 1
    in_use = 2000 + 299 - restored["rows_held"]
    assert client.get("/v1/appraisals").json()["total"] == in_use
    assert_problem(
        client.post("/v1/batches/9/withdraw", headers=auth(keys)), 404, "There is no batch 9"
    )


def test_upload_of_an_unusable_file(client: TestClient, keys: dict[str, str]) -> None:
    assert_problem(
        upload(client, b"carat,cut\n1,Ideal\n", auth(keys)), 422, "Required column(s) missing"
    )


def test_oversized_bodies_get_413(
    client: TestClient, api_settings, keys: dict[str, str], new_batch: bytes
) -> None:
    api_settings.max_upload_bytes = 1_000
    client.app.state.services.store.max_upload_bytes = 1_000
    assert_problem(upload(client, new_batch, auth(keys)), 413, "the limit is 1,000")
    huge = b"x" * 200_000
    response = client.post("/v1/quotes/batch/csv", files={"file": ("big.csv", huge, "text/csv")})
    assert_problem(response, 413, "over the limit")

    def chunks():
        for _ in range(100):
            yield b"x" * 10_000

    chunked = client.post(
        "/v1/quotes/batch/csv", content=chunks(), headers={"content-type": "text/csv"}
    )
    assert_problem(chunked, 413, "over the limit")
    assert chunked.headers["connection"] == "close"


def test_upload_starts_a_background_retrain_when_asked(
    client: TestClient, keys: dict[str, str], appraisals: pd.DataFrame
) -> None:
    body = upload(client, csv_bytes(appraisals.iloc[2000:3000]), auth(keys), retrain="true").json()
    run = wait_for_run(client, body["training_run_url"])
    assert run["trigger"] == "batch 2" and run["status"] in {"promoted", "rejected"}
    assert run["candidate_metrics"]["mape"] > 0 and run["champion_metrics"]["mape"] > 0


def test_batches_and_appraisals_pages(client: TestClient) -> None:
    batches = client.get("/v1/batches").json()
    assert [b["id"] for b in batches] == [1] and batches[0]["rows_accepted"] == 2000
    page = client.get("/v1/appraisals", params={"limit": 3, "offset": 2, "cut": "Ideal"}).json()
    assert page["total"] > 500 and page["limit"] == 3 and len(page["items"]) == 3
    assert all(item["cut"] == "Ideal" for item in page["items"])
    assert page["items"][0]["appraised_on"] == "2026-01-01"
    assert client.get("/v1/appraisals", params={"batch_id": 9}).json()["total"] == 0
    assert_problem(client.get("/v1/appraisals", params={"limit": 0}), 422, "limit")
    assert_problem(client.get("/v1/batches/42"), 404, "There is no batch 42")


# ---- models -----------------------------------------------------------------------------------


def test_training_run_lifecycle(client: TestClient, keys: dict[str, str]) -> None:
    assert_problem(client.post("/v1/training-runs", headers=NO_KEY), 401, "X-API-Key")
    response = client.post("/v1/training-runs", headers=auth(keys), json={"force": True})
    assert response.status_code == 202
    assert response.headers["location"] == response.json()["url"]
    run = wait_for_run(client, response.headers["location"])
    assert run["status"] == "promoted" and run["candidate_version"] == 2
    assert "not worse than the champion" in run["message"]
    assert [r["id"] for r in client.get("/v1/training-runs").json()][0] == run["id"]
    assert_problem(client.get("/v1/training-runs/999"), 404, "no training run 999")


def test_second_training_run_is_refused_while_one_runs(
    client: TestClient, keys: dict[str, str]
) -> None:
    store = client.app.state.services.store
    token = lease.acquire(store, "retrain", 60)
    assert_problem(
        client.post("/v1/training-runs", headers=auth(keys)), 409, "A retrain is already running"
    )
    lease.release(store, "retrain", token)


def test_promote_and_rollback_through_the_api(client: TestClient, keys: dict[str, str]) -> None:
    run = client.post("/v1/training-runs", headers=auth(keys), json={"force": True}).json()
    wait_for_run(client, run["url"])
    services = client.app.state.services
    services.cache.refresh()
    assert client.post("/v1/quotes", json=STONE).json()["model_version"] == 2
    promoted = client.post("/v1/models/1/promote", headers=auth(keys))
    assert promoted.status_code == 200 and promoted.json()["is_champion"]
    deadline = time.monotonic() + 15
    while client.post("/v1/quotes", json=STONE).json()["model_version"] != 1:
        assert time.monotonic() < deadline, "the promotion is never served"
        time.sleep(0.05)
    versions = client.get("/v1/models").json()
    assert [(v["version"], v["is_champion"]) for v in versions] == [(1, True), (2, False)]
    assert versions[0]["reference_metrics"]["n"] == versions[1]["reference_metrics"]["n"]
    rolled = client.post("/v1/models/rollback", headers=auth(keys)).json()
    assert rolled["version"] == 2
    assert_problem(
        client.post("/v1/models/7/promote", headers=auth(keys)), 404, "no model version 7"
    )


# ---- serving without the database -------------------------------------------------------------


def test_quotes_keep_flowing_while_the_database_is_slow_or_down(
    client: TestClient, monkeypatch
) -> None:
    """A slow database delays readiness only; an unreachable one leaves quotes served by the
    loaded champion while health says degraded."""
    services = client.app.state.services
    store = services.store

    def slow_ping() -> bool:
        time.sleep(1.5)
        return True

    monkeypatch.setattr(store, "ping", slow_ping)
    services.readiness._checked = 0.0

    async def together() -> tuple[bool, bool, float]:
        import httpx

        transport = httpx.ASGITransport(app=client.app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://api", headers=client.headers
        ) as http:
            started = time.perf_counter()
            ready = asyncio.create_task(http.get("/health/ready"))
            await asyncio.sleep(0.05)
            quote = await http.post("/v1/quotes", json=STONE)
            assert quote.status_code == 200
            quote_first = not ready.done()
            live = await http.get("/health/live")
            assert live.status_code == 200
            live_first = not ready.done()
            await ready
            return quote_first, live_first, time.perf_counter() - started

    quote_done_first, live_done_first, ready_seconds = asyncio.run(together())
    assert ready_seconds >= 1.5, ready_seconds
    assert quote_done_first and live_done_first, "both answered while readiness still waited"

    from sqlalchemy.exc import OperationalError

    def down(*_: object, **__: object) -> None:
        raise OperationalError("SELECT", {}, Exception("connection refused"))

    monkeypatch.setattr(services.registry, "champion_stamp", down)
    services.cache.refresh()
    health = client.get("/health").json()
    assert health["status"] == "degraded" and "database is unreachable" in health["detail"]
    quote = client.post("/v1/quotes", json=STONE)
    assert quote.status_code == 200 and quote.json()["model_version"] == 1


def test_a_retried_quote_with_the_same_idempotency_key_is_answered_once_and_charged_once(
    client: TestClient, keys: dict[str, str]
) -> None:
    headers = {**auth(keys, "client"), "Idempotency-Key": "order-7781-stone-1"}
    first = client.post("/v1/quotes", json=STONE, headers=headers)
    again = client.post("/v1/quotes", json=STONE, headers=headers)
    assert first.status_code == again.status_code == 200
    assert again.json()["quote_id"] == first.json()["quote_id"]
    assert again.headers["idempotent-replayed"] == "true"
    other = client.post("/v1/quotes", json={**STONE, "carat": 2.0}, headers=headers)
    assert_problem(other, 422, "already used with a different request")
    assert_problem(
        client.post("/v1/quotes", json=STONE, headers={**headers, "Idempotency-Key": "a b"}),
        422,
        "Idempotency-Key header must be",
    )
    fresh = client.post(
        "/v1/quotes", json=STONE, headers={**headers, "Idempotency-Key": "order-7781-stone-2"}
    )
    assert fresh.json()["quote_id"] != first.json()["quote_id"]
    services = client.app.state.services
    services.meter.flush()
    hour = client.get("/v1/usage", headers=auth(keys, "client")).json()["hours"][-1]
    assert (hour["requests"], hour["stones"]) == (2, 2), "the retry was not charged"
    services.quotes.flush()
    assert services.quotes.count() == 2, "and not recorded twice"


def test_a_request_id_is_echoed_in_the_answer_the_problem_and_the_access_log(
    client: TestClient, keys: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="app.access"):
        mine = client.post(
            "/v1/quotes",
            json={**STONE, "cut": "Superb"},
            headers={**auth(keys, "client"), "X-Request-ID": "ticket-4711.a"},
        )
        made_up = client.post("/v1/quotes", json=STONE, headers={"X-Request-ID": "no spaces!"})
    problem = assert_problem(mine, 422, "cut: not an accepted value")
    assert mine.headers["x-request-id"] == problem["request_id"] == "ticket-4711.a"
    generated = made_up.headers["x-request-id"]
    assert generated != "no spaces!" and len(generated) == 32, "an invalid id is replaced"
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "app.access"]
    line = next(entry for entry in lines if entry["request_id"] == "ticket-4711.a")
    assert (line["key"], line["route"], line["status"]) == ("client", "/v1/quotes", 422)
    assert keys["client"] not in caplog.text, "the key itself is never logged"
    assert "x-worker" not in {name.lower() for name in mine.headers}, "no header names a process"


def test_ratelimit_fields_are_on_every_keyed_answer_and_fall(
    client: TestClient, keys: dict[str, str]
) -> None:
    limited = auth(keys, "limited")  # 5 stones a day, 4 requests a minute
    first = client.post("/v1/quotes", json=STONE, headers=limited)
    second = client.post("/v1/quotes", json=STONE, headers=limited)
    assert first.headers["ratelimit-policy"] == '"minute";q=4;w=60, "day";q=5;w=86400'

    def left(answer) -> dict[str, int]:
        return {
            part.split(";")[0].strip('"'): int(part.split(";r=")[1].split(";")[0])
            for part in answer.headers["ratelimit"].split(", ")
        }

    assert left(first) == {"minute": 3, "day": 4} and left(second) == {"minute": 2, "day": 3}
    usage = client.get("/v1/usage", headers=limited).json()
    assert (usage["requests_left_this_minute"], usage["stones_left_today"]) == (1, 3)
    over = client.post("/v1/quotes/batch", json={"stones": [STONE] * 4}, headers=limited)
    assert over.status_code == 429 and int(over.headers["retry-after"]) >= 1
    assert "ratelimit" in over.headers
    unlimited = client.post("/v1/quotes", json=STONE, headers=auth(keys, "client"))
    assert "ratelimit" not in unlimited.headers, "a key without limits has no fields"
    declared = client.app.openapi()["paths"]["/v1/quotes"]["post"]["responses"]
    assert {"RateLimit", "RateLimit-Policy", "X-Request-ID"} <= set(declared["200"]["headers"])
    assert "Retry-After" in declared["429"]["headers"]
