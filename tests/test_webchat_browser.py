"""The web chat widget in headless Chromium, as a visitor uses it: a page on the shop's own
site opens the widget, a message reaches the Slack thread, the agent's reply appears with
their name; the bridge is stopped while the visitor writes; a reload keeps the conversation;
the first open stays small and makes no third-party request."""

from __future__ import annotations

import re
import time

from playwright.async_api import Browser, Request, expect

from tests.browser import screenshot
from tests.conftest import AGENT, CHANNEL, HarnessFactory
from tests.helpers_webchat import (
    chat_button,
    chat_log,
    inbound_texts,
    open_and_say,
    reopen_on_same_port,
    shop_site,
    webchat_harness,
    webchat_thread,
)
from tests.waiting import poll

BUDGET = 15 * 1024  # what a first open may transfer (gzipped)


async def test_a_visitor_and_an_agent_talk(browser: Browser,
                                           make_harness: HarnessFactory) -> None:
    async with shop_site() as site:
        h = await webchat_harness(make_harness, site)
        context = await browser.new_context(locale="sr-RS", timezone_id="Europe/Belgrade")
        page = await context.new_page()
        requested: list[str] = []

        def seen(request: Request) -> None:
            requested.append(request.url)
        page.on("request", seen)
        profile = h.slack.users[AGENT]["profile"]  # Dana's Slack picture, on another host
        profile["image_72"] = f"{site.origin}/avatar.png"
        await page.goto(f"{site.origin}/?from=ad", referer="https://search.example/q=socks")
        await expect(chat_button(page)).to_be_visible()
        await open_and_say(page, "Do the socks come in blue?")
        await expect(chat_log(page).get_by_text("Sent")).to_have_count(1)

        thread = await webchat_thread(h)
        posted = h.slack.thread(CHANNEL, thread)
        first = next(m["text"] for m in posted if "Do the socks come in blue?" in m["text"])
        assert f"page {site.origin}/?from=ad" in first
        assert "from https://search.example/q=socks" in first
        assert "language en" in first  # the page's own lang wins over the browser's
        assert "local time" in first and "GMT+0100" in first

        assert await h.agent_says(thread, "Yes, navy and sky blue.") == 200
        started = time.monotonic()
        await expect(chat_log(page).get_by_text("Yes, navy and sky blue.")).to_be_visible(
            timeout=1000)
        assert time.monotonic() - started < 1.0
        await expect(chat_log(page).get_by_text("Dana", exact=True)).to_be_visible()
        picture = chat_log(page).locator("img.av")
        await expect(picture).to_have_count(1)
        assert str(await picture.get_attribute("src")).startswith(f"{h.url}/webchat/avatar/")
        await page.wait_for_function(
            "() => { const i = document.querySelector('[data-bridge-chat]').shadowRoot"
            ".querySelector('img.av'); return i && i.complete && i.naturalWidth === 8; }")
        await screenshot(page, "webchat-conversation")

        # First open: only the site and the bridge were asked, and little was transferred.
        bridge = h.url
        assert all(u.startswith((site.origin, bridge, bridge.replace("http", "ws")))
                   for u in requested), requested
        sizes = await page.evaluate(
            "b => performance.getEntriesByType('resource').filter(e => e.name.startsWith(b))"
            ".map(e => [e.name, e.transferSize])", bridge)
        assert any(name.endswith("/widget.js") and size > 0 for name, size in sizes), sizes
        assert sum(size for _, size in sizes) <= BUDGET, sizes

        await page.reload()
        await chat_button(page).click()
        await expect(chat_log(page).get_by_text("Do the socks come in blue?")).to_be_visible()
        await expect(chat_log(page).get_by_text("Yes, navy and sky blue.")).to_be_visible()
        assert inbound_texts(h) == ["Do the socks come in blue?"]
        await context.close()


async def test_messages_written_while_the_bridge_is_down_arrive_once(
        browser: Browser, make_harness: HarnessFactory) -> None:
    async with shop_site() as site:
        h = await webchat_harness(make_harness, site)
        page = await browser.new_page()
        await page.goto(site.origin)
        await open_and_say(page, "Hello?")
        await expect(chat_log(page).get_by_text("Sent")).to_have_count(1)
        thread = await webchat_thread(h)

        await h.bridge.stop()
        await open_and_say(page, "Is anyone there?")
        await open_and_say(page, "My order is 4711.")
        await expect(chat_log(page).get_by_text("Sending…")).to_have_count(2)
        await screenshot(page, "webchat-offline-queue")
        again = await reopen_on_same_port(h)
        try:
            await again.start()
            await expect(chat_log(page).get_by_text("Sent")).to_have_count(3, timeout=15000)

            async def texts() -> list[str]:
                return inbound_texts(h)
            await poll(texts, lambda got: got == ["Hello?", "Is anyone there?",
                                                  "My order is 4711."],
                       "each message stored once, in order")

            async def in_slack() -> list[str]:
                return [m["text"] for m in h.slack.thread(CHANNEL, thread)]
            got = await poll(in_slack, lambda t: sum("4711" in x for x in t) == 1,
                             "the queued messages in the Slack thread")
            assert sum("Is anyone there?" in x for x in got) == 1
        finally:
            await again.stop()


async def test_an_agent_reply_comes_back_after_a_reload_and_a_new_page(
        browser: Browser, make_harness: HarnessFactory) -> None:
    async with shop_site() as site:
        h = await webchat_harness(make_harness, site)
        context = await browser.new_context()
        page = await context.new_page()
        await page.goto(site.origin)
        await open_and_say(page, "Where is my parcel?")
        await expect(chat_log(page).get_by_text("Sent")).to_have_count(1)
        thread = await webchat_thread(h)
        await page.close()  # the visitor went away; the agent answers meanwhile
        assert await h.agent_says(thread, "It left the warehouse today.") == 200
        await h.drained()

        page = await context.new_page()  # the same browser: its localStorage
        await page.goto(f"{site.origin}/other")
        await chat_button(page).click()
        await expect(chat_log(page).get_by_text("It left the warehouse today.")).to_be_visible()
        await expect(chat_log(page).get_by_text("Where is my parcel?")).to_be_visible()
        assert re.search(r"v-[0-9a-f]{24}", str(h.rows(
            "SELECT address FROM identities WHERE connector = 'webchat'")))
