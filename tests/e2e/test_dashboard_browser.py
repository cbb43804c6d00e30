"""The whole dashboard in a real headless Chromium, as its people use it: the counter pricing a
conflicting stone, an extreme one and a list (also on a phone), the expert uploading, storing,
retraining, promoting and rolling back, and Francesco's first view.

Screenshots land in artifacts/screenshots/ (git-ignored) for a person to look at.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from diamond_model.learning.loop import LearningLoop
from diamond_model.settings import Settings
from tests.e2e.server import CHROMIUM, CHROMIUM_ARGS, ROOT, dashboard_server
from tests.helpers import ACCESS_CODE, csv_bytes

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


def server_settings(env: dict[str, str]) -> dict[str, str]:
    return {
        "database_url": env["DIAMOND_DATABASE_URL"],
        "instance_dir": env["DIAMOND_INSTANCE_DIR"],
    }


def metric(page, label: str) -> str:
    box = page.locator('[data-testid="stMetric"]').filter(has_text=label).first
    return box.locator('[data-testid="stMetricValue"]').inner_text(timeout=TIMEOUT)


def choose(page, label: str, option: str) -> None:
    page.get_by_label(label).click()
    page.get_by_role("option", name=re.compile(f"^{re.escape(option)} ")).click()


def settle(page) -> None:
    """Wait until Streamlit has finished the rerun the last action started."""
    page.wait_for_timeout(300)
    page.locator('[data-testid="stStatusWidget"]').wait_for(state="detached", timeout=TIMEOUT)


def assert_our_menu(page) -> None:
    """Opened by its own address on a fresh server, a page still runs inside our navigation
    (not Streamlit's automatic `pages/` menu, whose first entry reads "streamlit app")."""
    menu = page.locator('[data-testid="stSidebarNav"]').inner_text(timeout=TIMEOUT)
    assert "Home" in menu and "streamlit app" not in menu.lower(), menu


def shot(page, name: str, full: bool = True) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SHOTS / name, full_page=full)


def test_the_counter_prices_a_conflicting_stone_an_extreme_one_and_a_list(
    browser, server_env: dict[str, str], tmp_path: Path
) -> None:
    with dashboard_server(server_env) as base:
        page = browser.new_page(viewport={"width": 1400, "height": 2000})
        page.set_default_timeout(TIMEOUT)
        page.goto(f"{base}/Price_a_stone")
        page.get_by_text("Estimated price").wait_for()
        assert_our_menu(page)
        assert page.get_by_role("button", name="Deploy").count() == 0, "no developer chrome"
        plain = metric(page, "Estimated price")

        page.get_by_text("Measurements (optional)").click()
        report = page.get_by_label("Paste them as the report writes them")
        report.fill("6.10 – 6.15 × 3.80 mm")
        report.press("Enter")
        settle(page)
        page.get_by_text("the millimetres imply").first.wait_for()
        body = page.inner_text("body")
        assert "Confidence: medium" in body and "set aside" in body
        assert metric(page, "Estimated price") == plain, (
            "conflicting millimetres do not pull the price"
        )
        shot(page, "1-price-a-conflicting-stone.png")
        page.get_by_role("button", name="Clear the measurements").first.click()
        settle(page)
        assert (
            "priced from the 4cs only because x, y, z are missing"
            in page.inner_text("body").lower()
        )

        carat = page.get_by_role("spinbutton", name="Carat (ct)")
        carat.fill("4.00")
        carat.press("Enter")
        choose(page, "Colour (D best → J)", "D")
        choose(page, "Clarity (IF best → I1)", "IF")
        settle(page)
        page.get_by_text("Confidence: low").wait_for()
        body = page.inner_text("body")
        assert "none of our appraisals is a d if stone weighing over 2 ct" in body.lower()
        assert "the price is an extrapolation" in body
        shot(page, "2-price-an-extreme-stone.png")

        carat.fill("40")
        carat.press("Enter")
        settle(page)
        page.get_by_text("No price: Carat must be").wait_for()
        assert page.locator('[data-testid="stMetric"]').count() == 0, "no stale price"

        stones = tmp_path / "stones.csv"
        stones.write_text(
            "carat,cut,color,clarity\n1.0,Ideal,G,VS2\n2,02,Good,E,VS1\n0.5,Good,Q,VS1\n"
        )
        page.get_by_role("tab", name="A list of stones").click()
        page.locator('input[type="file"]').first.set_input_files(str(stones))
        page.get_by_text("Priced 1 of 3 stones").wait_for()
        page.locator('[data-testid="stDataFrame"]').last.wait_for()
        shot(page, "3-price-a-list.png")
        page.close()

        phone = browser.new_page(
            viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
        )
        phone.set_default_timeout(TIMEOUT)
        phone.goto(f"{base}/Price_a_stone")
        phone.get_by_text("Likely range").first.wait_for()
        for label in ("Estimated price", "Likely range"):
            box = (
                phone.locator('[data-testid="stMetric"]')
                .filter(has_text=label)
                .first.bounding_box()
            )
            assert box is not None and box["y"] + box["height"] <= 844, (
                f"{label} on the first screen"
            )
        width = phone.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"no sideways scrolling ({width}px)"
        what_if = phone.locator(
            "xpath=//h3[contains(., 'What if the grades were different?')]"
            "/following::div[@data-testid='stDataFrame'][1]//div[contains(@class, 'dvn-scroller')]"
        )
        what_if.scroll_into_view_if_needed()
        inside, shown = what_if.evaluate("e => [e.scrollWidth, e.clientWidth]")
        assert 300 < shown and inside <= shown, f"what-if figures fit ({inside}px in {shown}px)"
        shot(phone, "4-price-a-stone-on-a-phone.png", full=False)
        phone.close()


def test_the_expert_uploads_stores_retrains_promotes_and_rolls_back(
    browser, server_env: dict[str, str], appraisals: pd.DataFrame, tmp_path: Path
) -> None:
    batch = appraisals.iloc[2000:2400].astype({"color": str})
    batch.loc[batch.index[5], "color"] = "Q"
    upload = tmp_path / "new-appraisals.csv"
    upload.write_bytes(csv_bytes(batch))
    with dashboard_server(server_env) as base:
        page = browser.new_page(viewport={"width": 1400, "height": 2200})
        page.set_default_timeout(TIMEOUT)
        page.goto(f"{base}/Appraisals_and_retraining")
        code = page.get_by_label("Expert access code")
        code.wait_for()
        assert_our_menu(page)
        code.fill("wrong")
        page.get_by_role("button", name="Unlock expert mode").click()
        page.get_by_text("That access code is not right").wait_for()
        code.fill(ACCESS_CODE)
        page.get_by_role("button", name="Unlock expert mode").click()
        page.get_by_text("Expert mode, signed in as").wait_for()

        page.locator('input[type="file"]').first.set_input_files(str(upload))
        page.get_by_text("what the current model (v1) quotes").wait_for()
        assert metric(page, "Appraisals to store") == "399" and metric(page, "Rows rejected") == "1"
        shot(page, "5-expert-preview.png")
        # A genuine batch may hold a suspect price or two for review (about 1 in 1,000).
        held = int(metric(page, "Suspect prices"))
        assert held <= 2
        page.get_by_role(
            "button", name=re.compile(rf"^Store {399 - held} appraisals from new-appraisals.csv")
        ).click()
        page.get_by_text("Stored batch 2: 399 appraisals").wait_for()
        page.get_by_text(re.compile(r"(v2 now prices every quote|keeps pricing)")).wait_for(
            timeout=180_000
        )
        settle(page)
        shot(page, "6-expert-retrained.png")
        page.get_by_role("button", name=re.compile(r"^Serve v\d+…")).click()
        page.get_by_text(re.compile(r"Serve v\d+ — trained .*\?")).wait_for()
        page.get_by_role("button", name=re.compile(r"^Yes, serve v")).click()
        page.get_by_text(re.compile(r"v\d+ now prices every quote\.")).wait_for()
        settle(page)
        shot(page, "7-expert-promoted.png")
        rollback = page.get_by_role("button", name=re.compile(r"^Roll back to v\d+ — trained"))
        label = rollback.inner_text()
        target = re.search(r"v(\d+)", label).group(1)
        rollback.click()
        page.get_by_role("button", name=f"Yes, serve v{target}").click()
        page.get_by_text(f"v{target} now prices every quote.").wait_for()
        settle(page)
        pipeline = LearningLoop.from_settings(Settings(**server_settings(server_env)))
        assert pipeline.registry.champion_version() == int(target)
        pipeline.store.dispose()
        # The page re-read the versions: the serving one is no longer offered to serve.
        page.get_by_label("Serve another version").click()
        options = page.get_by_role("option").all_inner_texts()
        assert options and not any(o.startswith(f"v{target} ") for o in options), options
        page.keyboard.press("Escape")
        shot(page, "8-expert-rolled-back.png")
        page.close()


def test_francescos_first_view(browser, server_env: dict[str, str]) -> None:
    with dashboard_server(server_env) as base:
        page = browser.new_page(viewport={"width": 1400, "height": 2000})
        page.set_default_timeout(TIMEOUT)
        page.goto(base)
        page.get_by_text("Model v1, trained").wait_for()
        shot(page, "9-home.png")
        page.goto(f"{base}/Performance")
        page.get_by_text("Is the model good, and is it getting better?").wait_for()
        page.get_by_text("lower is better").first.wait_for()
        page.locator(".js-plotly-plot").first.wait_for()
        assert (
            page.locator(".modebar").count() == 0 or not page.locator(".modebar").first.is_visible()
        )
        shot(page, "10-performance.png")
        page.close()
