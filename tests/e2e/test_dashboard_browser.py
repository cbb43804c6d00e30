"""The whole dashboard in a real headless Chromium: price a stone, upload a batch, retrain.

Screenshots of every page land in artifacts/screenshots/ (git-ignored) for a person to look at.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from tests.app.conftest import API_KEY
from tests.e2e.server import CHROMIUM, CHROMIUM_ARGS, ROOT, dashboard_server

pytestmark = pytest.mark.browser
SHOTS = ROOT / "artifacts" / "screenshots"
TIMEOUT = 60_000


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail("Debian's chromium must be installed in CI (see .ci/run)")
        pytest.skip("no /usr/bin/chromium: apt-get install chromium to run the browser tests")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        yield browser
        browser.close()


def price_text(page) -> str:  # noqa: ANN001
    return page.locator('[data-testid="stMetricValue"]').first.inner_text(timeout=TIMEOUT)


def test_staff_and_expert_journeys_in_a_real_browser(
    browser,
    server_env: dict[str, str],
    appraisals: pd.DataFrame,
    tmp_path: Path,  # noqa: ANN001
) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    with dashboard_server(server_env) as base:
        page = browser.new_page(viewport={"width": 1400, "height": 2200})
        page.set_default_timeout(TIMEOUT)

        page.goto(base)
        page.get_by_text("Model v1, trained").wait_for()
        assert "in 10 real prices fell inside" in page.inner_text("body")
        page.screenshot(path=SHOTS / "1-home.png", full_page=True)

        page.goto(f"{base}/Price_a_stone")
        page.get_by_text("Estimated price").wait_for()
        first = price_text(page)
        assert first.startswith("$")
        carat = page.get_by_role("spinbutton", name="Carat (ct)")
        carat.fill("1.50")
        carat.press("Enter")
        page.wait_for_function(
            "old => document.querySelector('[data-testid=\"stMetricValue\"]')?.innerText !== old",
            arg=first,
        )
        assert price_text(page) != first
        page.get_by_text("compared with a typical stone").first.wait_for()
        page.locator(".js-plotly-plot").first.wait_for()
        page.screenshot(path=SHOTS / "2-price-a-stone.png", full_page=True)

        batch = appraisals.iloc[2000:2400].astype({"color": str})
        batch.loc[batch.index[5], "color"] = "Q"
        upload = tmp_path / "new-appraisals.csv"
        batch.to_csv(upload, index=False)
        page.goto(f"{base}/Appraisals_and_retraining")
        page.get_by_role("textbox", name="Expert access code").fill("wrong")
        page.get_by_role("button", name="Unlock expert mode").click()
        page.get_by_text("That access code is not right").wait_for()
        page.get_by_role("textbox", name="Expert access code").fill(API_KEY)
        page.get_by_role("button", name="Unlock expert mode").click()
        page.get_by_text("Expert mode: uploads").wait_for()
        page.locator('input[type="file"]').first.set_input_files(str(upload))
        page.get_by_text("Preview of new-appraisals.csv").wait_for()
        page.get_by_text("Rows rejected").wait_for()
        values = page.locator('[data-testid="stMetricValue"]').all_inner_texts()
        assert values[:2] == ["399", "1"], values
        page.get_by_role("button", name="Store 399 appraisals from new-appraisals.csv").click()
        page.get_by_text("Stored batch 2: 399 appraisals").wait_for()
        page.get_by_text(re.compile(r"Run 2: (promoted|not promoted)")).wait_for(timeout=120_000)
        page.screenshot(path=SHOTS / "3-appraisals-and-retraining.png", full_page=True)

        page.goto(f"{base}/Performance")
        page.get_by_text("Data volume over batches").wait_for()
        page.get_by_text("Model diagnostics", exact=True).click()
        page.get_by_text("held-out appraisals").first.wait_for()
        page.locator(".js-plotly-plot >> visible=true").nth(2).wait_for()
        page.screenshot(path=SHOTS / "4-performance.png", full_page=True)
        page.close()
