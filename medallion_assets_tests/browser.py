"""A real browser for the UI tests: Debian's chromium driven by Playwright, and what the Dagster UI draws.

Playwright never downloads a browser of its own here: it drives /usr/bin/chromium, which `make test`
installs from Debian when it is missing.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
# Large enough that the whole asset graph fits at a zoom where Dagster draws full asset nodes (their
# names untruncated) rather than minimal boxes: it draws full nodes from 60% zoom; this gives ~100%.
VIEWPORT = {"width": 3200, "height": 2400}
ACTION_TIMEOUT_MS = 30_000  # a click, a page load, an element to appear or an expect() to hold


@contextmanager
def browser_page(base_url: str, failure_screenshot: Path) -> Iterator[Page]:
    """A page of a fresh headless chromium on base_url; a failing block leaves a screenshot behind."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs it (apt-get install -y chromium, as root)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=["--no-sandbox"] if os.geteuid() == 0 else [],  # chromium's sandbox refuses to run as root
        )
        try:
            page = browser.new_page(base_url=base_url, viewport=VIEWPORT)
            page.set_default_timeout(ACTION_TIMEOUT_MS)
            expect.set_options(timeout=ACTION_TIMEOUT_MS)
            try:
                yield page
            except BaseException:
                with suppress(Exception):
                    page.screenshot(path=str(failure_screenshot))
                    print(f"the page at the failure: {failure_screenshot}")
                raise
        finally:
            browser.close()


def lineage_graph_nodes(page: Page) -> list[tuple[str, str]]:
    """(group, name) of every asset node the lineage graph draws, sorted.

    Dagster draws an asset as the last part of its key, inside the box of its group once groups are
    expanded; each box and node is an SVG foreignObject in graph coordinates, named by data-tooltip."""
    boxes = page.locator("svg foreignObject:has([data-tooltip])").evaluate_all(
        """objects => objects.map(o => ({
            group: o.classList.contains('group'),
            name: o.querySelector('[data-tooltip]').dataset.tooltip,
            x: +o.getAttribute('x'), y: +o.getAttribute('y'),
            width: +o.getAttribute('width'), height: +o.getAttribute('height'),
        }))"""
    )
    groups = [b for b in boxes if b["group"]]

    def group_of(node: dict) -> str:
        x, y = node["x"] + node["width"] / 2, node["y"] + node["height"] / 2
        inside = [g["name"] for g in groups if g["x"] <= x <= g["x"] + g["width"] and g["y"] <= y <= g["y"] + g["height"]]
        return inside[0] if len(inside) == 1 else f"<{len(inside)} groups>"

    return sorted((group_of(b), b["name"]) for b in boxes if not b["group"])
