"""Where WebSockets are blocked (issue 26): the widget falls back to HTTP long-polls with the
same acknowledgements and resume, in Chromium with no WebSocket at all; and the poll endpoint's
answers to bad input."""

from __future__ import annotations

import asyncio
from typing import Any

from playwright.async_api import Browser, expect

from tests.conftest import CHANNEL, Harness, HarnessFactory
from tests.helpers_webchat import (
    chat_button,
    chat_log,
    inbound_texts,
    open_and_say,
    shop_site,
    webchat_harness,
    webchat_thread,
)

NO_WEBSOCKET = "Object.defineProperty(window, 'WebSocket', {value: undefined});"


async def test_the_widget_works_without_websockets(browser: Browser,
                                                   make_harness: HarnessFactory) -> None:
    async with shop_site() as site:
        h = await webchat_harness(make_harness, site)
        context = await browser.new_context()
        await context.add_init_script(NO_WEBSOCKET)
        page = await context.new_page()
        polls: list[str] = []
        page.on("request", lambda r: polls.append(r.url) if "/webchat/poll" in r.url else None)
        await page.goto(site.origin)
        await open_and_say(page, "My office blocks websockets")
        await expect(chat_log(page).get_by_text("Sent")).to_have_count(1)
        thread = await webchat_thread(h)
        assert await h.agent_says(thread, "Long-polling works too.") == 200
        await expect(chat_log(page).get_by_text("Long-polling works too.")).to_be_visible(
            timeout=2000)
        await page.reload()
        await chat_button(page).click()
        await expect(chat_log(page).get_by_text("My office blocks websockets")).to_be_visible()
        await expect(chat_log(page).get_by_text("Long-polling works too.")).to_be_visible()
        assert polls and inbound_texts(h) == ["My office blocks websockets"]
        assert any("My office blocks websockets" in m["text"]
                   for m in h.slack.thread(CHANNEL, thread))


async def poll(h: Harness, body: Any, origin: str, query: str = "") -> tuple[int, Any]:
    async with h.session.post(f"{h.url}/webchat/poll?site=shop{query}", json=body,
                              headers={"Origin": origin}) as resp:
        return resp.status, await resp.json()


async def test_poll_acks_dedupes_resumes_and_refuses(make_harness: HarnessFactory) -> None:
    async with shop_site() as site:
        h = await webchat_harness(make_harness, site)
        o = site.origin
        frame = {"type": "message", "client_id": "p-1", "text": "hello by poll"}
        status, got = await poll(h, {"after": 0, "frames": [frame]}, o)
        assert status == 200
        welcome, ack, *_ = got["frames"]
        token = welcome["visitor_token"]
        assert ack["type"] == "ack" and ack["client_id"] == "p-1"
        status, again = await poll(h, {"after": ack["id"], "frames": [frame]}, o,
                                   f"&token={token}")
        assert again["frames"] == [ack]  # the resend: the same ack, no welcome, one row
        assert h.count("messages") == 1

        waiting = asyncio.create_task(poll(h, {"after": ack["id"]}, o, f"&token={token}"))
        thread = await webchat_thread(h)
        assert await h.agent_says(thread, "Answer while you wait") == 200
        status, news = await asyncio.wait_for(waiting, 5)
        assert [f["text"] for f in news["frames"]] == ["Answer while you wait"]

        assert (await poll(h, {"after": 0}, "https://evil.example"))[0] == 403
        assert (await poll(h, [1], o, f"&token={token}"))[0] == 400
        assert (await poll(h, {"after": -1}, o, f"&token={token}"))[0] == 400
        bad = {"after": 0, "frames": [{"type": "message", "client_id": "x y", "text": "t"}]}
        status, got = await poll(h, bad, o, f"&token={token}")
        assert status == 200 and got["frames"][0] == {"type": "error", "code": "bad_client_id"}
        assert h.count("messages") == 2  # the visitor's one and Dana's
