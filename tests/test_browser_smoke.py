"""The browser the page tests use starts, loads a page the bridge's web stack serves over
loopback, and saves a screenshot that is a real PNG."""

from __future__ import annotations

from aiohttp import web
from playwright.async_api import Browser

from tests.browser import screenshot


async def test_chromium_renders_a_loopback_page(browser: Browser) -> None:
    async def page(_: web.Request) -> web.Response:
        return web.Response(text="<!doctype html><title>t</title><button>Open chat</button>",
                            content_type="text/html")

    app = web.Application()
    app.router.add_get("/", page)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        tab = await browser.new_page()
        await tab.goto(f"http://127.0.0.1:{port}/")
        assert await tab.get_by_role("button", name="Open chat").count() == 1
        shot = await screenshot(tab, "smoke")
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    finally:
        await runner.cleanup()
