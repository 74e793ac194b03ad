"""Files both ways in the web chat (issue 26): a visitor attaches a picture in Chromium and it
is uploaded into the Slack thread byte for byte; an agent's picture shows in the page and a
PDF as a link; bad uploads get a 4xx and no row."""

from __future__ import annotations

import io
from typing import Any

import aiohttp
from playwright.async_api import Browser, expect

from tests.browser import screenshot
from tests.conftest import HarnessFactory
from tests.helpers_webchat import (
    chat_log,
    open_and_say,
    png,
    shop_site,
    webchat_harness,
    webchat_thread,
)
from tests.test_files import agent_sends_file

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


async def test_a_file_each_way(browser: Browser, make_harness: HarnessFactory,
                               tmp_path: Any) -> None:
    async with shop_site() as site:
        h = await webchat_harness(make_harness, site)
        page = await browser.new_page()
        await page.goto(site.origin)
        await open_and_say(page, "The sock I got has a hole")
        await expect(chat_log(page).get_by_text("Sent")).to_have_count(1)
        picture = tmp_path / "hole.png"
        picture.write_bytes(png(16, (10, 10, 10)))
        async with page.expect_file_chooser() as chooser:
            await page.get_by_role("button", name="Attach a file").click()
        await (await chooser.value).set_files(str(picture))
        await expect(chat_log(page).get_by_text("Sent")).to_have_count(2)
        await expect(chat_log(page).get_by_role("img", name="hole.png")).to_be_visible()

        [complete] = await h.slack.wait_for("files.completeUploadExternal", 1)
        thread = await webchat_thread(h)
        assert complete.params["thread_ts"] == thread
        [uploaded] = [f for f in h.slack.files.values() if f.get("completed")]
        assert uploaded["content"] == picture.read_bytes()

        await agent_sends_file(h, thread, png(12, (0, 90, 0)), "replacement.png", "image/png")
        await agent_sends_file(h, thread, PDF, "label.pdf", "application/pdf")
        shown = chat_log(page).get_by_role("img", name="replacement.png")
        await expect(shown).to_be_visible()
        assert str(await shown.get_attribute("src")).startswith(f"{h.url}/webchat/file/")
        link = chat_log(page).get_by_role("link", name="📎 label.pdf")
        await expect(link).to_be_visible()
        async with h.session.get(str(await link.get_attribute("href"))) as resp:
            assert resp.status == 200 and await resp.read() == PDF
            assert resp.headers["Content-Disposition"].startswith("attachment")
        await screenshot(page, "webchat-files")


async def test_bad_uploads_are_refused_without_a_row(make_harness: HarnessFactory) -> None:
    async with shop_site() as site:
        h = await webchat_harness(make_harness, site)
        origin = {"Origin": site.origin}
        ws = await h.session.ws_connect(
            f"ws://127.0.0.1:{h.port}/webchat/ws?site=shop", headers=origin)
        token = (await ws.receive_json(timeout=5))["visitor_token"]
        await ws.close()
        url = f"{h.url}/webchat/upload?site=shop&name=x.png"

        async def post(query: str, body: bytes, ctype: str = "image/png",
                       headers: dict[str, str] | None = None) -> int:
            query = query if "client_id=" in query else query + "&client_id=f1"
            async with h.session.post(url + query, data=io.BytesIO(body), headers={
                    "Content-Type": ctype, **(origin if headers is None else headers)}) as r:
                return r.status
        assert await post("", png()) == 401  # no token
        assert await post("&token=v-" + "0" * 24 + ".00", png()) == 401  # forged token
        assert await post(f"&token={token}", png(), headers={"Origin": "https://evil"}) == 403
        assert await post(f"&token={token}", b"<svg/>", "image/svg+xml") == 415
        assert await post(f"&token={token}", b"MZ\x90\x00", "image/png") == 415  # not a PNG
        assert await post(f"&token={token}", b"", "image/png") == 400
        assert await post(f"&token={token}&client_id=a%20b", png()) == 400
        assert await post(f"&token={token}", b"\x89PNG" + b"0" * (11 * 1024 * 1024)) == 413
        assert h.count("messages") == 0
        assert await post(f"&token={token}", png()) == 200
        assert await post(f"&token={token}", png()) == 200  # a resend: one message
        assert h.count("messages") == 1
        async with h.session.options(url, headers={
                **origin, "Access-Control-Request-Method": "POST"}) as r:
            assert r.status == 204
            assert r.headers["Access-Control-Allow-Origin"] == site.origin
        async with aiohttp.ClientSession() as s, s.get(f"{h.url}/webchat/file/{'x' * 32}") as r:
            assert r.status == 404


async def test_erasing_the_customer_empties_their_mailbox_and_files(
        make_harness: HarnessFactory) -> None:
    async with shop_site() as site:
        h = await webchat_harness(make_harness, site)
        origin = {"Origin": site.origin}
        ws = await h.session.ws_connect(
            f"ws://127.0.0.1:{h.port}/webchat/ws?site=shop", headers=origin)
        token = (await ws.receive_json(timeout=5))["visitor_token"]
        await ws.send_json({"type": "message", "client_id": "m1", "text": "my address is x"})
        assert (await ws.receive_json(timeout=5))["type"] == "ack"
        async with h.session.post(
                f"{h.url}/webchat/upload?site=shop&token={token}&client_id=f1&name=id.png",
                data=io.BytesIO(png()), headers={"Content-Type": "image/png", **origin}) as r:
            assert r.status == 200
        [url] = [f["url"] for f in (await ws.receive_json(timeout=5))["files"]]
        await ws.close()
        [(customer,)] = h.rows("SELECT customer_id FROM identities WHERE connector = 'webchat'")
        assert h.bridge.store is not None
        await h.bridge.store.erase_customer(int(customer), "test", 0.0)
        async with h.session.get(url) as resp:
            assert resp.status == 404
        back = await h.session.ws_connect(
            f"ws://127.0.0.1:{h.port}/webchat/ws?site=shop&token={token}", headers=origin)
        await back.receive_json(timeout=5)
        await back.send_json({"type": "resume", "after": 0})
        await back.send_json({"type": "ping"})
        assert await back.receive_json(timeout=5) == {"type": "pong"}  # nothing kept
        await back.close()
