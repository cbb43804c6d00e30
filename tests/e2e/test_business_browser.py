"""The owner's Business page in a real Chromium beside a real uvicorn: a key created on the page is
used by a client through the API, its use and income appear within seconds, and once revoked on
the page its next calls are refused. Screenshots in artifacts/screenshots/ (b1-b3)."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.e2e.server import api_server, dashboard_server
from tests.e2e.test_dashboard_browser import TIMEOUT, browser, metric, settle, shot  # noqa: F401
from tests.helpers import ACCESS_CODE

pytestmark = pytest.mark.browser
STONE = {"carat": 0.7, "cut": "Ideal", "color": "F", "clarity": "VS2"}


def test_a_key_made_on_the_business_page_is_used_billed_and_revoked(
    browser,  # noqa: F811
    server_env: dict[str, str],
) -> None:
    with (
        api_server(server_env) as api,
        dashboard_server({**server_env, "DIAMOND_API_URL": api}) as base,
    ):
        page = browser.new_page(viewport={"width": 1400, "height": 1800})
        page.set_default_timeout(TIMEOUT)
        page.goto(f"{base}/Business")
        page.get_by_label("Your name").fill("Francesco")
        page.get_by_label("Expert access code").fill(ACCESS_CODE)
        page.get_by_role("button", name="Unlock expert mode").click()
        page.get_by_text("No client keys yet").wait_for()

        page.get_by_label("Client name").fill("gioielleria-rossi")
        price = page.get_by_label("Price per 1,000 stones ($)")
        price.fill("40.00")
        price.press("Tab")
        page.get_by_role("button", name="Create the key").click()
        page.get_by_text("shown this once").wait_for()
        codes = page.locator('[data-testid="stCode"]')
        secret = codes.nth(0).inner_text().strip()
        first_call = codes.nth(1).inner_text()
        assert secret.startswith("dk_") and f"{api}/v1/quotes" in first_call
        assert codes.nth(0).locator("button").count() >= 1, "a copy button beside the key"
        shot(page, "b1-business-new-key.png")

        # The client's integration: one stone, then a list of 25, then a mistake.
        headers = {"X-API-Key": secret}
        assert httpx.post(f"{api}/v1/quotes", json=STONE, headers=headers).status_code == 200
        batch = {"stones": [STONE] * 25}
        assert httpx.post(f"{api}/v1/quotes/batch", json=batch, headers=headers).status_code == 200
        bad = httpx.post(f"{api}/v1/quotes", json={**STONE, "cut": "Superb"}, headers=headers)
        assert bad.status_code == 422
        sent = time.monotonic()

        page.get_by_role("button", name="I have copied it").click()
        settle(page)
        while metric(page, "Stones priced for clients") != "26":
            assert time.monotonic() - sent < 20, "the client's use did not reach the page"
            page.get_by_role("button", name="Refresh").click()
            settle(page)
        seen_after = time.monotonic() - sent
        assert metric(page, "Income in").startswith("$1.04")  # 26 stones at $40 per 1,000
        page.get_by_text("26 stones priced for clients in the last 31 days").wait_for()
        assert page.locator('[data-testid="stCode"]').count() == 0, "the key is not shown again"
        shot(page, "b2-business-usage.png")

        page.get_by_role("tab", name="Revoke").click()
        page.get_by_text("Stop 'gioielleria-rossi' working").click()
        page.get_by_role("button", name="Revoke the key").click()
        page.get_by_text("is revoked").wait_for()
        shot(page, "b3-business-revoked.png")
        revoked = time.monotonic()
        while (
            answer := httpx.post(f"{api}/v1/quotes", json=STONE, headers=headers)
        ).status_code == 200:
            assert time.monotonic() - revoked < 10, "the revoked key still prices"
            time.sleep(0.25)
        assert answer.status_code == 403 and "revoked" in answer.json()["detail"]
        print(f"usage on the page {seen_after:.1f} s after the calls")
        page.close()
