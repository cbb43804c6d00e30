"""Dashboard speed in a real headless Chromium: the warm first render of each page (until the
page's last section is on screen), the time from opening the price page to its first price (the
first visit after a server start, then fresh sessions on a warm server), and the time from
changing the carat to the new price.

`python -m benchmarks.bench_dashboard` (all) or `python -m benchmarks.bench_dashboard first-price`
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from benchmarks.common import report, seeded_instance
from tests.e2e.server import CHROMIUM, CHROMIUM_ARGS, dashboard_server

# page path, the last section the page draws, the target for its median first render (seconds)
PAGES = {
    "Home": ("", "Where to go", 1.0),
    "Price a stone": ("Price_a_stone", "Comparable stones our expert appraised", 1.0),
    "Performance": ("Performance", "Are the ranges honest?", 1.5),
    "Appraisals and retraining": ("Appraisals_and_retraining", "Stored data", None),
}
METRIC = '[data-testid="stMetricValue"]'
CHANGED = "old => document.querySelector('[data-testid=\"stMetricValue\"]')?.innerText !== old"
CARATS = ["0.70", "1.20", "0.90", "1.60", "0.55", "2.10", "1.05", "0.80", "1.35", "0.60"]


def render(page, base: str, path: str, marker: str) -> float:
    started = time.perf_counter()
    page.goto(f"{base}/{path}")
    page.get_by_text(marker, exact=True).first.wait_for(state="attached")
    page.wait_for_selector('[data-testid="stStatusWidget"]', state="detached")
    return time.perf_counter() - started


def first_price(browser, base: str) -> tuple[float, float]:
    """A new session (fresh browser context) opens the price page: seconds to the first price on
    screen, and to the page's last section."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(120_000)
    started = time.perf_counter()
    page.goto(f"{base}/Price_a_stone")
    page.locator(METRIC).first.wait_for(state="visible")
    price = time.perf_counter() - started
    page.get_by_text(PAGES["Price a stone"][1], exact=True).first.wait_for(state="attached")
    page.wait_for_selector('[data-testid="stStatusWidget"]', state="detached")
    whole = time.perf_counter() - started
    context.close()
    return price, whole


@contextmanager
def seeded_dashboard() -> Iterator[tuple[Any, str]]:
    """A real dashboard on a seeded instance and a headless Chromium: (browser, base URL)."""
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as folder:
        seeded_instance(folder).store.dispose()
        env = {"DIAMOND_INSTANCE_DIR": folder, "DIAMOND_ACCESS_CODE": "bench"}
        with dashboard_server(env) as base, sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            yield browser, base
            browser.close()


def open_to_first_price() -> None:
    print("== price page: open -> first price (streamlit + headless Chromium) ==")
    with seeded_dashboard() as (browser, base):
        price, whole = first_price(browser, base)
        report("first visit after a server start: first price", [price], unit="s")
        report("first visit after a server start: whole page", [whole], unit="s")
        runs = [first_price(browser, base) for _ in range(9)]
        report("new session, warm server: first price", [r[0] for r in runs], 1.0, unit="s")
        report("new session, warm server: whole page", [r[1] for r in runs], unit="s")


def main() -> None:
    print("== dashboard (streamlit + headless Chromium) ==")
    with seeded_dashboard() as (browser, base):
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(60_000)
        for path, marker, _ in PAGES.values():  # warm the server: imports, caches, model load
            render(page, base, path, marker)
        for name, (path, marker, target) in PAGES.items():
            seconds = [render(page, base, path, marker) for _ in range(7)]
            report(f"warm first render: {name}", seconds, target, unit="s")

        page.goto(f"{base}/Price_a_stone")
        page.get_by_text("Estimated price").first.wait_for()
        carat = page.get_by_role("spinbutton", name="Carat (ct)")
        updates = []
        for value in CARATS:
            old = page.locator(METRIC).first.inner_text()
            carat.fill(value)
            started = time.perf_counter()
            carat.press("Enter")
            page.wait_for_function(CHANGED, arg=old)
            updates.append(time.perf_counter() - started)
        report("new price on screen after changing the carat", updates, unit="s")


if __name__ == "__main__":
    if sys.argv[1:] == ["first-price"]:
        open_to_first_price()
    else:
        main()
        open_to_first_price()
