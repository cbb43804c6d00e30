"""Dashboard speed in a real headless Chromium: first render of each page on a warm server, and
the time from changing the carat to the new price on screen."""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

from common import report, seeded_instance

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.e2e.server import CHROMIUM, CHROMIUM_ARGS, dashboard_server  # noqa: E402

PAGES = {
    "Home": ("", "Model v1, trained"),
    "Price a stone": ("Price_a_stone", "Estimated price"),
    "Appraisals and retraining": ("Appraisals_and_retraining", "Training runs"),
    "Performance": ("Performance", "Data volume over batches"),
}
METRIC = '[data-testid="stMetricValue"]'
CHANGED = "old => document.querySelector('[data-testid=\"stMetricValue\"]')?.innerText !== old"


def main() -> None:
    from playwright.sync_api import sync_playwright

    print("== dashboard (streamlit + headless Chromium) ==")
    folder = tempfile.mkdtemp()
    seeded_instance(folder)
    env = {"DIAMOND_INSTANCE_DIR": folder, "DIAMOND_ACCESS_CODE": "bench"}
    with dashboard_server(env) as base, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(60_000)
        for path, marker in PAGES.values():  # warm the server: imports, caches, first model load
            page.goto(f"{base}/{path}")
            page.get_by_text(marker).first.wait_for()
        for name, (path, marker) in PAGES.items():
            seconds = []
            for _ in range(5):
                started = time.perf_counter()
                page.goto(f"{base}/{path}")
                page.get_by_text(marker).first.wait_for()
                seconds.append(time.perf_counter() - started)
            report(f"first render: {name}", seconds, 2, unit="s")

        page.goto(f"{base}/Price_a_stone")
        page.get_by_text("Estimated price").wait_for()
        carat = page.get_by_role("spinbutton", name="Carat (ct)")
        updates = []
        for value in [
            "0.70",
            "1.20",
            "0.90",
            "1.60",
            "0.55",
            "2.10",
            "1.05",
            "0.80",
            "1.35",
            "0.60",
        ]:
            old = page.locator(METRIC).first.inner_text()
            carat.fill(value)
            started = time.perf_counter()
            carat.press("Enter")
            page.wait_for_function(
                CHANGED,
                arg=old,
            )
            updates.append(time.perf_counter() - started)
        report("quote update after changing the carat", updates, 0.5, unit="s")
        browser.close()
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
