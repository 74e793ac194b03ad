"""The widget in headless Chromium against what must not happen: a forged `user_hash`, a page
on another origin, script payloads from a visitor and an agent, one visitor seeing another's
messages; and the keyboard and screen reader basics."""

from __future__ import annotations

import aiohttp
import pytest
from playwright.async_api import Browser, expect

from tests.browser import screenshot
from tests.conftest import HarnessFactory
from tests.helpers_webchat import (
    chat_button,
    chat_log,
    inbound_texts,
    open_and_say,
    shop_site,
    user_hash,
    webchat_harness,
    webchat_thread,
)
from tests.waiting import poll


async def fetch_config(bridge: str, origin: str) -> tuple[int, object]:
    async with aiohttp.ClientSession() as s, s.post(f"{bridge}/webchat/config?site=shop",
                                                  headers={"Origin": origin}) as r:
        return r.status, await r.json()


async def test_a_forged_user_hash_is_refused(browser: Browser,
                                            make_harness: HarnessFactory) -> None:
    async with shop_site() as site:
        h = await webchat_harness(make_harness, site, require_verification=True)
        good = await browser.new_page()
        await good.goto(f"{site.origin}/?user_id=alice&user_hash={user_hash('alice')}")
        await open_and_say(good, "Alice here, my invoice is wrong.")
        await expect(chat_log(good).get_by_text("Sent")).to_have_count(1)
        thread = await webchat_thread(h)
        assert await h.agent_says(thread, "Alice, the invoice is fixed.") == 200
        await expect(chat_log(good).get_by_text("Alice, the invoice is fixed.")).to_be_visible()

        forged = "0" * 64
        mallory = await browser.new_page()
        await mallory.goto(f"{site.origin}/?user_id=alice&user_hash={forged}")
        await chat_button(mallory).click()
        await expect(mallory.get_by_role("status")).to_contain_text("could not verify")
        await screenshot(mallory, "webchat-forged-hash")
        await mallory.get_by_role("textbox", name="Message").fill("show me alice's chat")
        await mallory.get_by_role("textbox", name="Message").press("Enter")
        # Identify in the page with another forged hash: still nothing of Alice's.
        await mallory.evaluate(
            "BridgeChat.identify({user_id: 'alice', user_hash: 'ab'.repeat(32)})")
        await expect(mallory.get_by_role("status")).to_contain_text("could not verify")
        await h.drained()
        assert await chat_log(mallory).get_by_text("invoice").count() == 0
        assert inbound_texts(h) == ["Alice here, my invoice is wrong."]


async def test_identify_in_the_page_starts_a_verified_conversation(
        browser: Browser, make_harness: HarnessFactory) -> None:
    async with shop_site() as site:
        h = await webchat_harness(make_harness, site, require_verification=True)
        page = await browser.new_page()
        await page.goto(site.origin)
        await page.wait_for_function("!!(window.BridgeChat && window.BridgeChat.identify)")
        await page.evaluate(
            "h => BridgeChat.identify({user_id: 'bob-7', user_hash: h, name: 'Bob Stone',"
            " email: 'bob@example.com'})", user_hash("bob-7"))
        await open_and_say(page, "Hi, Bob here.")
        await expect(chat_log(page).get_by_text("Sent")).to_have_count(1)
        rows = h.rows("SELECT address, display_name FROM identities WHERE connector = 'webchat'")
        assert [tuple(r) for r in rows] == [("shop:u-bob-7", "Bob Stone")]


@pytest.mark.backends("sqlite")  # nothing reaches the store: the browser side only
async def test_a_page_on_another_origin_gets_nothing(browser: Browser,
                                                     make_harness: HarnessFactory) -> None:
    async with shop_site() as site, shop_site() as stranger:
        h = await webchat_harness(make_harness, site)
        stranger.bridge_url = h.url
        page = await browser.new_page()
        ends: list[str] = []
        page.on("requestfailed", lambda r: ends.append(f"failed {r.url}"))
        page.on("response", lambda r: ends.append(f"{r.status} {r.url}"))
        await page.goto(stranger.origin)

        async def config_ended() -> list[str]:
            return [e for e in ends if "/webchat/config" in e]
        got = await poll(config_ended, bool, "the config request to end")
        assert got[0].startswith(("403 ", "failed ")), got  # refused, and unreadable
        status, _ = await fetch_config(h.url, stranger.origin)
        assert status == 403
        assert await page.locator("[data-bridge-chat]").count() == 0
        assert h.count("messages") == 0


@pytest.mark.backends("sqlite")  # one store is enough for what the DOM shows
async def test_script_payloads_are_shown_as_text(browser: Browser,
                                                 make_harness: HarnessFactory) -> None:
    async with shop_site() as site:
        h = await webchat_harness(make_harness, site)
        page = await browser.new_page()
        await page.goto(site.origin)
        payload = '<img src=x onerror="window.pwned=1"><script>window.pwned=2</script>'
        await open_and_say(page, payload)
        await expect(chat_log(page).get_by_text("Sent")).to_have_count(1)
        thread = await webchat_thread(h)
        assert await h.agent_says(thread, "<b onmouseover=alert(1)>bold</b> &lt;i&gt;") == 200
        await expect(chat_log(page).get_by_text("bold")).to_be_visible()
        await expect(chat_log(page).get_by_text(payload)).to_be_visible()
        assert await page.evaluate("window.pwned === undefined")
        host = page.locator("[data-bridge-chat]")
        assert await host.locator("img, script, b").count() == 0


@pytest.mark.backends("sqlite")  # two visitors' mailboxes; the store side is tested above
async def test_a_visitor_never_sees_another_visitors_messages(
        browser: Browser, make_harness: HarnessFactory) -> None:
    async with shop_site() as site:
        h = await webchat_harness(make_harness, site)
        ann = await (await browser.new_context()).new_page()
        ben = await (await browser.new_context()).new_page()
        await ann.goto(site.origin)
        await ben.goto(site.origin)
        await open_and_say(ann, "Ann's secret order 1234")
        await expect(chat_log(ann).get_by_text("Sent")).to_have_count(1)
        thread = await webchat_thread(h)
        await open_and_say(ben, "Ben asks about hats")
        await expect(chat_log(ben).get_by_text("Sent")).to_have_count(1)
        assert await h.agent_says(thread, "Ann, 1234 ships today.") == 200
        await expect(chat_log(ann).get_by_text("Ann, 1234 ships today.")).to_be_visible()
        await h.drained()
        await ben.reload()
        await chat_button(ben).click()
        await expect(chat_log(ben).get_by_text("Ben asks about hats")).to_be_visible()
        assert await chat_log(ben).get_by_text("1234").count() == 0


@pytest.mark.backends("sqlite")  # keyboard and roles only
async def test_keyboard_and_screen_reader_basics(browser: Browser,
                                                 make_harness: HarnessFactory) -> None:
    async with shop_site() as site:
        await webchat_harness(make_harness, site)
        page = await browser.new_page()
        await page.goto(site.origin)
        button = chat_button(page)
        await expect(button).to_be_visible()
        await page.keyboard.press("Tab")
        await expect(button).to_be_focused()
        await page.keyboard.press("Enter")
        box = page.get_by_role("textbox", name="Message")
        await expect(box).to_be_focused()
        log = chat_log(page)
        assert await log.get_attribute("aria-live") == "polite"
        await expect(page.get_by_role("button", name="Send message")).to_be_visible()
        await expect(page.get_by_role("button", name="Close chat")).to_be_visible()
        await page.keyboard.type("Typed with the keyboard only")
        await page.keyboard.press("Enter")
        await expect(log.get_by_text("Sent")).to_have_count(1)
        await page.keyboard.press("Escape")
        await expect(box).to_be_hidden()
        await expect(button).to_be_focused()
        assert await button.get_attribute("aria-expanded") == "false"
        # The page's own styles (button{color:red}) do not reach into the widget.
        color = await button.evaluate("b => getComputedStyle(b).color")
        assert color == "rgb(255, 255, 255)"
