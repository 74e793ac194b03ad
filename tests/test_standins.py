"""Self-checks: the official SDKs work unchanged against the local stand-ins."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from datetime import timedelta

import aiohttp
import pytest
import telegram
from aiohttp import web
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient
from telegram.error import Conflict, Forbidden, RetryAfter

from bridge.standins import SlackEventSender, SlackStandin, TelegramStandin
from bridge.standins.twilio import DEFAULT_ACCOUNT_SID
from tests.conftest import TG_TOKEN
from tests.waiting import until

TOKEN = TG_TOKEN
# `slack` and `session` come from conftest; `tg` is conftest's Telegram stand-in under a name
# that does not shadow the `telegram` package used here.


@pytest.fixture
def tg(request: pytest.FixtureRequest) -> TelegramStandin:
    standin: TelegramStandin = request.getfixturevalue("telegram")
    return standin


@pytest.fixture
async def bot(tg: TelegramStandin) -> AsyncIterator[telegram.Bot]:
    async with telegram.Bot(TOKEN, base_url=tg.base_url, base_file_url=tg.file_base_url) as b:
        yield b


def _client(slack: SlackStandin, session: aiohttp.ClientSession) -> AsyncWebClient:
    return AsyncWebClient(token="xoxb-standin", base_url=slack.base_url, session=session)


async def test_slack_web_client_roundtrip(
    slack: SlackStandin, session: aiohttp.ClientSession
) -> None:
    client = _client(slack, session)
    auth = await client.auth_test()
    assert auth["user_id"] == "U0BOT" and auth["bot_id"] == "B0BOT"
    parent = await client.chat_postMessage(channel="C1", text="hello")
    reply = await client.chat_postMessage(
        channel="C1", text="reply", thread_ts=parent["ts"], username="Agent Bo"
    )
    assert float(reply["ts"]) > float(parent["ts"])
    assert reply["message"]["thread_ts"] == parent["ts"]
    assert [m["text"] for m in slack.thread("C1", parent["ts"])] == ["hello", "reply"]
    assert [m["text"] for m in slack.parents("C1")] == ["hello"]
    slack.add_user("U1", display_name="Bo", real_name="Bo Agent")
    info = await client.users_info(user="U1")
    assert info["user"]["profile"]["display_name"] == "Bo"
    with pytest.raises(SlackApiError) as err:
        await client.users_info(user="U404")
    assert err.value.response["error"] == "user_not_found"
    updated = await client.chat_update(channel="C1", ts=parent["ts"], text="edited")
    assert updated["message"]["text"] == "edited" and slack.messages[0]["text"] == "edited"
    calls = await slack.wait_for("chat.postMessage", 2, timeout=1)
    assert calls[1].params["thread_ts"] == parent["ts"]
    assert calls[0].headers["Authorization"] == "Bearer xoxb-standin"
    assert slack.calls_to("users.info", ok_only=False)[-1].ok is False


async def test_slack_failures(slack: SlackStandin, session: aiohttp.ClientSession) -> None:
    client = _client(slack, session)
    slack.fail_next("chat.postMessage", status=429, retry_after=7)
    slack.fail_next("chat.postMessage", status=200, error="channel_not_found")
    with pytest.raises(SlackApiError) as err:
        await client.chat_postMessage(channel="C1", text="x")
    assert err.value.response.status_code == 429
    assert err.value.response.headers["Retry-After"] == "7"
    with pytest.raises(SlackApiError) as err:
        await client.chat_postMessage(channel="C1", text="x")
    assert err.value.response["error"] == "channel_not_found"
    assert (await client.chat_postMessage(channel="C1", text="x"))["ok"]
    assert [c.status for c in slack.calls] == [429, 200, 200]
    with pytest.raises(SlackApiError) as err:
        await AsyncWebClient(token="xoxb-wrong", base_url=slack.base_url).auth_test()
    assert err.value.response["error"] == "invalid_auth"
    with pytest.raises(TimeoutError, match=r"chat\.postMessage"):
        await slack.wait_for("chat.postMessage", 5, timeout=0.05)


async def test_slack_files_upload_v2(slack: SlackStandin, session: aiohttp.ClientSession) -> None:
    client = _client(slack, session)
    resp = await client.files_upload_v2(
        channel="C1", thread_ts="1.000001", content=b"\x89PNG", filename="a.png",
        initial_comment="see",
    )  # fmt: skip
    fid = resp["file"]["id"]
    assert slack.files[fid]["content"] == b"\x89PNG"
    assert slack.files[fid]["thread_ts"] == "1.000001"
    assert slack.thread("C1", "1.000001")[0]["files"][0]["id"] == fid
    async with session.get(
        resp["file"]["url_private"], headers={"Authorization": "Bearer xoxb-standin"}
    ) as r:
        assert await r.read() == b"\x89PNG"


async def test_slack_event_sender_signature(session: aiohttp.ClientSession) -> None:
    received: list[tuple[bytes, dict[str, str]]] = []

    async def handler(request: web.Request) -> web.Response:
        received.append((await request.read(), dict(request.headers)))
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/slack/events", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    try:
        sender = SlackEventSender(f"http://127.0.0.1:{port}/slack/events", "s3cret", session)
        env = sender.message_event(channel="C1", user="U1", text="hi", thread_ts="1.1")
        assert env["event"]["client_msg_id"] and env["event_id"].startswith("Ev")
        assert await sender.post(env, retry_num=1) == (200, "ok")
        assert await sender.post_interaction({"type": "block_actions"}) == (200, "ok")
    finally:
        await runner.cleanup()
    body, headers = received[0]
    assert SignatureVerifier("s3cret").is_valid_request(body, headers)
    assert json.loads(body)["event"]["thread_ts"] == "1.1"
    assert headers["X-Slack-Retry-Num"] == "1"
    assert SignatureVerifier("s3cret").is_valid_request(*received[1])


async def test_telegram_bot_roundtrip(tg: TelegramStandin, bot: telegram.Bot) -> None:
    assert bot.username == "bridge_standin_bot"
    msg = await bot.send_message(chat_id=42, text="<b>hi</b>", parse_mode="HTML")
    assert msg.chat.id == 42 and msg.text == "<b>hi</b>"
    assert tg.sent[0]["parse_mode"] == "HTML" and tg.sent[0]["chat_id"] == 42
    assert await bot.set_webhook("https://example.test/tg", secret_token="abc")
    assert tg.webhook_url == "https://example.test/tg" and tg.webhook_secret == "abc"
    with pytest.raises(Conflict):
        await bot.get_updates()
    assert (await bot.get_webhook_info()).url == "https://example.test/tg"
    photo = await bot.send_photo(chat_id=42, photo=b"JPEGDATA", caption="pic")
    file = await bot.get_file(photo.photo[-1].file_id)
    assert await file.download_as_bytearray() == bytearray(b"JPEGDATA")


async def test_telegram_failures(
    tg: TelegramStandin, bot: telegram.Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    # RetryAfter.__init__ itself reads .retry_after: without this opt-in, PTB 22.8 warns
    # (PTBDeprecationWarning) on every 429, which filterwarnings=error turns into a failure.
    monkeypatch.setenv("PTB_TIMEDELTA", "1")
    tg.fail_next("sendMessage", status=429, retry_after=3)
    tg.fail_next("sendMessage", status=403)
    with pytest.raises(RetryAfter) as flood:
        await bot.send_message(chat_id=42, text="x")
    assert flood.value.retry_after == timedelta(seconds=3)
    with pytest.raises(Forbidden, match="blocked"):
        await bot.send_message(chat_id=42, text="x")
    await bot.send_message(chat_id=42, text="x")
    assert [c.status for c in tg.calls_to("sendMessage", ok_only=False)] == [429, 403, 200]
    assert len(await tg.wait_for("sendMessage", 1, timeout=1)) == 1


async def test_telegram_get_updates(tg: TelegramStandin, bot: telegram.Bot) -> None:
    first = tg.text_update(chat_id=7, text="one")
    tg.queue_update(first)
    updates = await bot.get_updates(timeout=1)
    assert [u.message.text for u in updates if u.message] == ["one"]
    poll = asyncio.create_task(bot.get_updates(offset=first["update_id"] + 1, timeout=5))
    await until(lambda: tg.polls_waiting == 1, "the long poll held", timeout=5)
    tg.queue_update(tg.text_update(chat_id=7, text="two", username="ann"))
    later = await asyncio.wait_for(poll, 2)
    assert [u.message.text for u in later if u.message] == ["two"]
    assert later[0].message is not None and later[0].message.from_user is not None
    assert later[0].message.from_user.username == "ann"
    assert later[0].update_id == first["update_id"] + 1


async def test_telegram_deliver(tg: TelegramStandin, session: aiohttp.ClientSession) -> None:
    seen: list[str | None] = []

    async def hook(request: web.Request) -> web.Response:
        seen.append(request.headers.get("X-Telegram-Bot-Api-Secret-Token"))
        return web.Response()

    app = web.Application()
    app.router.add_post("/tg", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    try:
        async with session.post(
            f"{tg.base_url}{TOKEN}/setWebhook",
            data={"url": f"http://127.0.0.1:{port}/tg", "secret_token": "zz"},
        ) as r:
            assert (await r.json())["result"] is True
        update = tg.text_update(chat_id=9, text="hi")
        assert (await tg.deliver(update, session))[0] == 200
        assert (await tg.deliver(update, session, secret=""))[0] == 200
    finally:
        await runner.cleanup()
    assert seen == ["zz", None]


@pytest.mark.parametrize(("kind", "probe", "status", "refusal"), [
    ("slack", "api/auth.test", 200, b'"not_authed"'),
    ("telegram", "bot{token}/getMe", 401, b'"Unauthorized"'),
    ("twilio", "2010-04-01/Accounts/{account}/Messages.json", 401, b'"code": 20003'),
    ("messenger", "v25.0/me/messages", 400, b'"code": 190'),
])
async def test_each_standin_runs_standalone(kind: str, probe: str, status: int, refusal: bytes,
                                            session: aiohttp.ClientSession) -> None:
    """`python -m bridge.standins KIND` prints READY <base URL>, and that URL answers as the
    platform's API does (here: refusing a request without credentials)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bridge.standins", kind, "--port", "0",
        stdout=asyncio.subprocess.PIPE, stdin=asyncio.subprocess.DEVNULL)
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode().split()
        assert line[0] == "READY" and line[1].startswith("http://127.0.0.1:")
        root = line[1].removesuffix("/api/").removesuffix("/bot").rstrip("/")
        url = f"{root}/{probe.format(token='1:x', account=DEFAULT_ACCOUNT_SID)}"
        async with session.post(url) as resp:
            assert resp.status == status and refusal in await resp.read()
    finally:
        proc.terminate()
        assert await asyncio.wait_for(proc.wait(), 10) == 0


async def test_slack_run_standalone_knows_every_agent(session: aiohttp.ClientSession) -> None:
    """On its own nobody adds users, so every well-formed user id is a member (an agent's reply
    needs `users.info`); inside the tests an id not added is `user_not_found`, as in Slack."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bridge.standins", "slack", "--port", "0",
        stdout=asyncio.subprocess.PIPE, stdin=asyncio.subprocess.DEVNULL)
    auth = {"Authorization": "Bearer xoxb-standin"}
    try:
        assert proc.stdout is not None
        base = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode().split()[1]
        async with session.post(f"{base}users.info", data={"user": "U0AGENT1"},
                                headers=auth) as resp:
            got = await resp.json()
        assert got["ok"] is True and got["user"]["id"] == "U0AGENT1"
        async with session.post(f"{base}users.info", data={"user": "not a user"},
                                headers=auth) as resp:
            assert (await resp.json())["error"] == "user_not_found"
    finally:
        proc.terminate()
        assert await asyncio.wait_for(proc.wait(), 10) == 0
    async with SlackStandin() as inside:
        async with session.post(f"{inside.base_url}users.info", data={"user": "U0AGENT1"},
                                headers=auth) as resp:
            assert (await resp.json())["error"] == "user_not_found"
