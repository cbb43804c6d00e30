"""A problem document's `type` leads to a page saying what it means and what to do, and a
retired route says so in headers for 90 days before it answers 410."""

from __future__ import annotations

import ast
from datetime import date
from pathlib import Path

import pytest
from fastapi import APIRouter
from fastapi.testclient import TestClient

from app import problem_types
from app.api import create_app
from app.retirement import retiring
from diamond_model.settings import Settings
from tests.helpers import NO_KEY, assert_problem, auth

ROOT = Path(__file__).resolve().parents[2]


def _titles_in_code() -> set[str]:
    """Every literal title handed to problem_response or a title mapping in app/."""
    titles: set[str] = set()
    for path in (ROOT / "app").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "problem_response":
                args = node.args[1:2]
                titles |= {a.value for a in args if isinstance(a, ast.Constant)}
            if isinstance(node, ast.Tuple) and len(node.elts) == 3:  # (kind, status, title)
                status, title = node.elts[1], node.elts[2]
                if isinstance(status, ast.Constant) and isinstance(status.value, int):
                    if isinstance(title, ast.Constant) and isinstance(title.value, str):
                        titles.add(title.value)
    return titles


def test_every_title_the_code_sends_has_a_page():
    titles = _titles_in_code()
    assert len(titles) >= 15, titles  # the scan found the calls
    assert titles <= set(problem_types.BY_TITLE), titles - set(problem_types.BY_TITLE)
    # Chosen by expressions, not literals: the 401/403 titles and HTTPException's own.
    assert {"Missing or unknown key", "Not allowed", "Method not allowed"} <= set(
        problem_types.BY_TITLE
    )


@pytest.mark.parametrize(
    "request_args, status",
    [
        (("post", "/v1/quotes", {"json": {"carat": "heavy"}}), 422),
        (("get", "/v1/quotes/999999", {}), 404),
        (("get", "/v1/appraisals", {"headers": NO_KEY}), 401),
        (("get", "/v1/nowhere", {}), 404),
    ],
)
def test_a_problem_type_resolves_to_its_page(client: TestClient, request_args, status):
    method, path, kwargs = request_args
    body = assert_problem(getattr(client, method)(path, **kwargs), status, "")
    assert body["type"].startswith("http://testserver/problems/")
    page = client.get(body["type"])
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert f"<h1>{body['title']}</h1>" in page.text and "What to do" in page.text


def test_the_type_follows_the_address_the_request_reached(client: TestClient):
    response = client.get("/v1/nowhere", headers={"Host": "api.shop.example:8443"})
    assert response.json()["type"] == "http://api.shop.example:8443/problems/not-found"
    hostile = client.get("/v1/nowhere", headers={"Host": "evil.example/<script>"})
    assert "<script>" not in hostile.json()["type"]


def test_the_index_lists_every_problem_and_unknown_slugs_are_404(client: TestClient):
    index = client.get("/problems")
    assert all(f'href="/problems/{p.slug}"' in index.text for p in problem_types.TYPES)
    assert_problem(client.get("/problems/no-such-thing"), 404, "Every type: /problems")
    assert client.get("/changelog").text.startswith("# Changelog of the REST API")


def _with_retiring_route(settings: Settings, today: date) -> TestClient:
    app = create_app(settings)
    router = APIRouter()

    @router.get(
        "/v1/old-index",
        deprecated=True,
        dependencies=[
            retiring(date(2027, 1, 4), date(2027, 4, 5), "/v1/market-index", lambda: today)
        ],
    )
    async def old_index() -> dict:
        return {"level": 1.0}

    app.include_router(router)
    return TestClient(app)


def test_a_retiring_route_announces_its_sunset_then_answers_410(api_settings, keys):
    with _with_retiring_route(api_settings, date(2027, 2, 1)) as before:
        response = before.get("/v1/old-index", headers=auth(keys, "reader"))
        assert response.status_code == 200
        assert response.headers["Deprecation"] == "@1799020800"  # 2027-01-04 00:00 UTC
        assert response.headers["Sunset"] == "Mon, 05 Apr 2027 00:00:00 GMT"
        assert '</v1/market-index>; rel="successor-version"' in response.headers["Link"]
        schema = before.get("/openapi.json").json()
        assert schema["paths"]["/v1/old-index"]["get"]["deprecated"] is True
    with _with_retiring_route(api_settings, date(2027, 4, 5)) as after:
        gone = after.get("/v1/old-index", headers=auth(keys, "reader"))
        body = assert_problem(gone, 410, "retired on 2027-04-05")
        assert "/v1/market-index" in body["detail"] and gone.headers["Sunset"]
        assert after.get(body["type"]).status_code == 200


def test_a_route_cannot_be_retired_at_less_than_90_days_notice():
    with pytest.raises(ValueError, match="at least 90 days"):
        retiring(date(2027, 1, 4), date(2027, 3, 1), "/v1/new")
