"""Every outbound fetch has a host rule: media only from the platform's hosts (or the configured
base URL's origin), credentials only to their own host, redirects followed without them."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from bridge.standins.messenger import CDN, MessengerStandin
from connectors.base import SendError, fetch_media
from tests.conftest import AGENT, CHANNEL, Harness, HarnessFactory
from tests.helpers_messenger import ANN, PAGE_A, messenger_harness, sender, thread_of
from vocab.untrusted import HostRule

pytestmark = pytest.mark.backends("sqlite")  # fetches and their rules: nothing store-specific


def test_the_rule_names_hosts_suffixes_and_configured_origins() -> None:
    rule = HostRule.of(["files.slack.com", ".fbcdn.net"], ["http://127.0.0.1:8080/api/"],
                       credentials=["files.slack.com"])
    assert rule.allows("https://files.slack.com/files-pri/T1/x.png")
    assert rule.allows("https://scontent.xx.fbcdn.net/v/x.jpg")
    assert rule.allows("http://127.0.0.1:8080/cdn/x")
    for url in ["http://files.slack.com/x", "https://files.slack.com:8443/x",
                "https://evilfbcdn.net/x", "https://fbcdn.net.evil.com/x",
                "http://127.0.0.1:8081/x", "http://127.0.0.1/x", "file:///etc/passwd",
                "https://[::1/x", "https://files.slack.com:99999/x", "", "javascript:1"]:
        assert not rule.allows(url), url
    assert rule.with_credentials("https://files.slack.com/x")
    assert not rule.with_credentials("https://scontent.xx.fbcdn.net/x")


@pytest.fixture
async def server() -> AsyncIterator[tuple[str, list[tuple[str, str | None]]]]:
    """A file server that records (path, Authorization) and redirects /hop/<n> to /file."""
    seen: list[tuple[str, str | None]] = []

    async def handle(request: web.Request) -> web.StreamResponse:
        seen.append((request.path, request.headers.get("Authorization")))
        if request.path.startswith("/away"):
            raise web.HTTPFound("http://127.0.0.2:9/stolen")
        if request.path.startswith("/hop"):
            raise web.HTTPFound("/file")
        return web.Response(body=b"x" * 100)

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}", seen
    await runner.cleanup()


async def test_credentials_go_to_the_first_host_only_and_redirects_stay_inside_the_rule(
    server: tuple[str, list[tuple[str, str | None]]],
) -> None:
    base, seen = server
    rule = HostRule.of([], [base], credentials=[base])
    creds = {"Authorization": "Bearer xoxb-secret"}
    async with aiohttp.ClientSession() as session:
        assert await fetch_media(session, f"{base}/hop/1", rule, 1000, "t",
                                 credentials=creds) == b"x" * 100
        with pytest.raises(SendError) as away:
            await fetch_media(session, f"{base}/away", rule, 1000, "t", credentials=creds)
        assert away.value.code == "foreign_url" and not away.value.retryable
        with pytest.raises(SendError) as big:
            await fetch_media(session, f"{base}/file", rule, 10, "t")
        assert big.value.code == "too_large"
        with pytest.raises(SendError) as foreign:
            await fetch_media(session, "http://127.0.0.1:9/file", rule, 1000, "t",
                              credentials=creds)
        assert foreign.value.code == "foreign_url"
    # Redirect targets got no credentials; nothing was asked of 127.0.0.2 or port 9.
    token = "Bearer xoxb-secret"
    assert seen == [("/hop/1", token), ("/file", None), ("/away", token), ("/file", None)]


async def test_no_credentials_where_the_rule_gives_none(
    server: tuple[str, list[tuple[str, str | None]]],
) -> None:
    base, seen = server
    async with aiohttp.ClientSession() as session:
        await fetch_media(session, f"{base}/file", HostRule.of([], [base]), 1000, "t",
                          credentials={"Authorization": "Bearer xoxb-secret"})
    assert seen == [("/file", None)]


async def test_a_messenger_attachment_off_metas_hosts_is_not_fetched_and_the_thread_says_so(
    make_harness: HarnessFactory, meta: MessengerStandin,
    server: tuple[str, list[tuple[str, str | None]]],
) -> None:
    base, seen = server
    h = await messenger_harness(make_harness, meta)
    s = sender(h)
    message = s.message(PAGE_A, ANN, "see", attachments=[("image", f"{base}/file")])
    assert await s.send(PAGE_A, message) == 200
    thread = await thread_of(h, PAGE_A, ANN)
    await h.wait_rows("SELECT status FROM outbox WHERE kind = 'slack_file'", [("failed",)])
    await h.slack.wait_for("chat.postMessage", 2)
    await h.drained()
    assert "not one of the platform's hosts" in h.slack.thread(CHANNEL, thread)[-1]["text"]
    assert seen == [] and meta.calls_to(CDN, ok_only=False) == []
    assert h.slack.calls_to("files.completeUploadExternal") == []


async def test_an_agent_file_on_another_host_is_not_fetched_with_the_bot_token(
    harness: Harness, server: tuple[str, list[tuple[str, str | None]]],
) -> None:
    base, seen = server
    h = harness
    await h.customer_says(36, "hi")
    thread = await h.thread_of(36)
    file = h.slack.add_file(b"%PDF-1.4", name="a.pdf", mimetype="application/pdf")
    file["url_private_download"] = file["url_private"] = f"{base}/file"
    event = h.agent.message_event(channel=CHANNEL, user=AGENT, text="", thread_ts=thread,
                                  files=[file])
    assert (await h.agent.post(event))[0] == 200
    await h.wait_rows("SELECT status FROM outbox WHERE kind = 'customer_file'", [("failed",)])
    await h.drained()
    assert seen == []  # never asked, so never given the token
    assert h.telegram.calls_to("sendDocument") == []
