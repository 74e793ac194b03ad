"""Headless Chromium for the pages the bridge serves (the widget, the survey page, the
dashboard): Debian's `chromium`, driven by Playwright for Python through `executable_path`
(installed by scripts/ensure-chromium.sh; Playwright downloads no browser).

`browser` is one browser per test; `screenshot(page, name)` saves a PNG under
`tests/output/screenshots/` (ignored by git) and returns its path.  A missing Chromium is an
error, never a skip: `--without-services` deselects these tests instead.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright

OUTPUT = Path(__file__).resolve().parent / "output" / "screenshots"


def chromium_path() -> str:
    found = os.environ.get("BRIDGE_CHROMIUM") or shutil.which("chromium")
    if not found:
        raise RuntimeError("Debian's chromium is not installed: run "
                           "`bash scripts/ensure-chromium.sh` (or pass --without-services)")
    return found


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        launched = await pw.chromium.launch(
            executable_path=chromium_path(), headless=True,
            args=["--no-sandbox", "--disable-dev-shm-usage", "--no-first-run"])
        try:
            yield launched
        finally:
            await launched.close()


async def screenshot(page: Page, name: str) -> Path:
    OUTPUT.mkdir(parents=True, exist_ok=True)
    path = OUTPUT / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path
