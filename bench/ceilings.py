"""Ceiling apps for the benchmark: what aiohttp alone, and a bare relay, can do on this machine.

    python -m bench.ceilings bare [--port 0]
    python -m bench.ceilings relay-raw --slack http://127.0.0.1:PORT/api/ [--port 0]
    python -m bench.ceilings relay-sdk --slack http://127.0.0.1:PORT/api/ [--port 0]

Each serves ``POST /webhooks/telegram`` (and ``/webhooks/twilio``, ``/webhooks/messenger``)
on 127.0.0.1
and prints ``READY <port>`` once listening.

* ``bare``: reads the body and answers 200 with the bridge's own ``{"ok": true}`` answer.
* ``relay-raw``: also makes one ``chat.postMessage`` per request to the Slack stand-in with a
  shared ``aiohttp.ClientSession`` (raw JSON POST, response read), then answers 200.
* ``relay-sdk``: the same call through slack_sdk's ``AsyncWebClient(session=shared)``, which
  is what the bridge uses.

No store, no signature check, no outbox: these are the upper bounds the bridge is compared
with.  They run on the same event loop as ``bridge run`` (uvloop when installed), with the same
access-log setting and the same client connection limit.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

import aiohttp
from aiohttp import web
from slack_sdk.web.async_client import AsyncWebClient

CHANNEL = "C0BENCH01"
TOKEN = "xoxb-bench"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _text(body: bytes) -> str:
    """The customer's text: a Telegram update (JSON) or a Twilio form (``Body``)."""
    if body.startswith(b"{"):
        update: dict[str, Any] = json.loads(body)
        if "entry" in update and "changes" in update["entry"][0]:  # WhatsApp Cloud
            value = update["entry"][0]["changes"][0]["value"]
            return str(value["messages"][0]["text"]["body"])
        if "entry" in update:  # Messenger: one event per entry here
            return str(update["entry"][0]["messaging"][0]["message"]["text"])
        return str(update["message"]["text"])
    return parse_qs(body.decode())["Body"][0]


def make_app(kind: str, slack_url: str, session: aiohttp.ClientSession | None) -> web.Application:
    async def bare(request: web.Request) -> web.StreamResponse:
        await request.read()
        return web.json_response({"ok": True})

    async def relay_raw(request: web.Request) -> web.StreamResponse:
        text = _text(await request.read())
        assert session is not None
        async with session.post(f"{slack_url}chat.postMessage",
                                json={"channel": CHANNEL, "text": text},
                                headers={"Authorization": f"Bearer {TOKEN}"}) as resp:
            answer = await resp.json()
        if not answer.get("ok"):
            return web.json_response({"error": answer.get("error")}, status=502)
        return web.json_response({"ok": True})

    client = (AsyncWebClient(token=TOKEN, base_url=slack_url, session=session, timeout=10)
              if session is not None else None)

    async def relay_sdk(request: web.Request) -> web.StreamResponse:
        text = _text(await request.read())
        assert client is not None
        await client.chat_postMessage(channel=CHANNEL, text=text, unfurl_links=False,
                                      unfurl_media=False)
        return web.json_response({"ok": True})

    handlers: dict[str, Handler] = {"bare": bare, "relay-raw": relay_raw,
                                    "relay-sdk": relay_sdk}
    app = web.Application(client_max_size=65536)
    app.router.add_post("/webhooks/telegram", handlers[kind])
    app.router.add_post("/webhooks/twilio", handlers[kind])
    app.router.add_post("/webhooks/messenger", handlers[kind])
    app.router.add_post("/webhooks/whatsapp", handlers[kind])
    return app


async def serve(kind: str, port: int, slack_url: str) -> None:
    session: aiohttp.ClientSession | None = None
    if kind != "bare":
        # the bridge's session: TCPConnector(limit=max(100, 2 * outbox concurrency 64))
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=128),
                                        timeout=aiohttp.ClientTimeout(total=20))
    runner = web.AppRunner(make_app(kind, slack_url, session), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    sys.stdout.write(f"READY {runner.addresses[0][1]}\n")
    sys.stdout.flush()
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
        if session is not None:
            await session.close()


def new_loop() -> asyncio.AbstractEventLoop:
    """The loop `bridge run` uses: uvloop when installed (see bridge.cli._new_loop)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ceilings", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("kind", choices=["bare", "relay-raw", "relay-sdk"])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--slack", default="", help="Slack stand-in API base URL (…/api/)")
    args = parser.parse_args(argv)
    if args.kind != "bare" and not args.slack:
        parser.error("--slack is required for the relay ceilings")
    with asyncio.Runner(loop_factory=new_loop) as runner:
        runner.run(serve(args.kind, args.port, args.slack))


if __name__ == "__main__":
    main()
