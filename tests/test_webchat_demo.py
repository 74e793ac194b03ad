"""`bridge demo --serve`: the page it serves carries the widget, and a visitor who writes gets
the stand-in agent's answer in the page; `bridge demo` itself still exits on its own
(tests/test_demo.py)."""

from __future__ import annotations

import asyncio

from playwright.async_api import Browser, expect

from bridge.demo_webchat import serve
from tests.browser import screenshot
from tests.conftest import free_socket
from tests.helpers_webchat import chat_log, open_and_say
from tests.waiting import poll


async def test_the_served_demo_page_chats(browser: Browser) -> None:
    with free_socket() as probe:
        site_port = probe.getsockname()[1]
    said: list[str] = []
    stop = asyncio.Event()
    task = asyncio.create_task(serve(said.append, stop, site_port))
    try:
        async def ready() -> list[str]:
            if task.done():
                task.result()
            return said
        await poll(ready, bool, "the demo to say where to open it", timeout=15)
        assert f"http://127.0.0.1:{site_port}/" in said[0]
        page = await browser.new_page()
        await page.goto(f"http://127.0.0.1:{site_port}/")
        await open_and_say(page, "Do you ship to Novi Sad?")
        await expect(chat_log(page).get_by_text("You wrote: Do you ship to Novi Sad?")) \
            .to_be_visible(timeout=10000)
        await screenshot(page, "webchat-demo")
    finally:
        stop.set()
        await task
