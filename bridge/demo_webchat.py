"""`bridge demo --serve`: the real bridge with the web chat widget on a local shop page, for a
person to open in a browser.  Slack is the stand-in; a stand-in agent, Dana, answers each
visitor message in its thread (as a person would in Slack), so the reply shows in the page."""

from __future__ import annotations

import asyncio
import signal
import socket
import sqlite3
import tempfile
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import aiohttp
from aiohttp import web

from bridge.app import Bridge
from bridge.registry import settings_registry
from bridge.settings import load_settings
from bridge.standins.config import Secrets, standin_config
from bridge.standins.slack import SlackEventSender, SlackStandin
from bridge.standins.telegram import TelegramStandin

CHANNEL = "C0DEMOWEB1"
AGENT = "U0AGENTDANA"
SIGNING = "demo-signing-secret"
PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Acme shop (bridge demo)</title></head><body style="font:16px sans-serif;margin:40px">
<h1>Acme shop</h1><p>Warm socks, 12 EUR. Open the chat button at the bottom right and write;
Dana (a stand-in agent in the stand-in Slack) answers in a moment.</p>
<script src="{bridge}/widget.js" data-site="demo" async></script></body></html>"""


async def _shop(bridge_url: str, port: int) -> web.AppRunner:
    async def page(_: web.Request) -> web.Response:
        return web.Response(text=PAGE.format(bridge=bridge_url), content_type="text/html")
    app = web.Application()
    app.router.add_get("/", page)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


def _unanswered(db: Path, after: int) -> list[tuple[int, str, str]]:
    sql = ("SELECT m.id, m.text, c.slack_thread_ts FROM messages m JOIN conversations c"
           " ON c.id = m.conversation_id WHERE m.direction = 'in' AND m.connector = 'webchat'"
           " AND m.id > ? AND c.slack_thread_ts IS NOT NULL ORDER BY m.id")
    with closing(sqlite3.connect(db)) as conn:
        return [(int(r[0]), str(r[1]), str(r[2])) for r in conn.execute(sql, (after,))]


async def _dana(db: Path, agent: SlackEventSender) -> None:
    """Answer every visitor message once it is in its Slack thread, as an agent would."""
    last = 0
    while True:
        await asyncio.sleep(0.3)
        for message_id, text, thread in await asyncio.to_thread(_unanswered, db, last):
            last = message_id
            reply = f"Hi! Dana here (a stand-in agent). You wrote: {text[:80]}"
            await agent.post(agent.message_event(channel=CHANNEL, user=AGENT,
                                                 thread_ts=thread, text=reply))


async def serve(say: Callable[[str], None], stop: asyncio.Event, site_port: int = 8765) -> None:
    with tempfile.TemporaryDirectory(prefix="bridge-webchat-demo-") as tmp:
        workdir = Path(tmp)
        async with SlackStandin() as slack, TelegramStandin() as telegram, \
                aiohttp.ClientSession() as session:
            slack.add_user(AGENT, display_name="Dana", real_name="Dana Whitfield")
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
            shop = f"http://127.0.0.1:{site_port}"
            config = workdir / "bridge.toml"
            config.write_text(standin_config(
                port=port, db=workdir / "demo.db", channel=CHANNEL, slack_api_url=slack.base_url,
                telegram_api_url=telegram.base_url, telegram_file_url=telegram.file_base_url,
                secrets=Secrets(slack.bot_token or "", SIGNING, telegram.token, "demo-hook"),
                overrides={"connectors.webchat": {"enabled": True, "sites": [
                    {"id": "demo", "allowed_origins": [shop], "title": "Chat with Acme"}]}},
            ), encoding="utf-8")
            bridge = Bridge(load_settings(config, settings_registry(), environ={},
                                          dotenv_dir=workdir), sock=sock)
            await bridge.start()
            runner = await _shop(f"http://127.0.0.1:{port}", site_port)
            agent = SlackEventSender(f"http://127.0.0.1:{port}/slack/events", SIGNING, session,
                                     team_id=slack.team_id)
            dana = asyncio.create_task(_dana(workdir / "demo.db", agent))
            say(f"Open {shop}/ in a browser (the bridge is on 127.0.0.1:{port}); "
                "Ctrl+C stops.")
            try:
                await stop.wait()
            finally:
                dana.cancel()
                await runner.cleanup()
                await bridge.stop()


async def serve_until_signalled(site_port: int = 8765) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await serve(print, stop, site_port)
    return 0
