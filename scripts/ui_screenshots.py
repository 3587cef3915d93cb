"""Screenshots of the Dagster UI in headless Chromium, to look at lineage, partitions,
backfills and checks after a change to the assets.

Run with ``dagster dev`` up on port 3000:
``.venv/bin/python scripts/ui_screenshots.py OUT_DIR [path ...]``.
Uses Debian's /usr/bin/chromium through Playwright; no browser download.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

BASE = os.environ.get("DAGSTER_UI", "http://127.0.0.1:3000")
DEFAULT_PAGES = {
    "lineage": "/asset-groups",
    "metrics_group": "/locations/pantry/asset-groups/metrics",
    "flights_partitions": "/assets/metrics/flights?view=partitions",
    "on_time_ratio_overview": "/assets/metrics/on_time_ratio",
    "runs": "/runs",
}
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else ".pantry/screens")
    out.mkdir(parents=True, exist_ok=True)
    pages = dict(DEFAULT_PAGES)
    for extra in sys.argv[2:]:
        pages[extra.strip("/").replace("/", "_").replace("?", "_")] = extra
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=FLAGS)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.goto(BASE + "/", wait_until="networkidle")
        skip = page.get_by_role("button", name="Skip")
        if skip.count():
            skip.first.click()
        for name, path in pages.items():
            page.goto(BASE + path, wait_until="networkidle")
            page.wait_for_timeout(2500)
            skip = page.get_by_role("button", name="Skip")  # Dagster's community modal may come late
            if skip.count() and skip.first.is_visible():
                skip.first.click()
                page.wait_for_timeout(500)
            page.screenshot(path=str(out / f"{name}.png"))
            print(out / f"{name}.png")
        browser.close()


if __name__ == "__main__":
    main()
