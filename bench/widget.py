"""What a visitor's browser downloads when the chat widget first opens (issue 25's budget:
15 KiB gzipped in total), measured on the wire from the real connector's routes.

    python -m bench.widget

Served in-process on loopback: `GET /widget.js` with `Accept-Encoding: gzip` and the
`POST /webchat/config` call the widget makes (status line, headers and body counted as sent);
the WebSocket's frames come on top (a welcome of about 100 bytes).  The browser test
(tests/test_webchat_browser.py) checks the same budget from Chromium's own transfer sizes.
"""

from __future__ import annotations

import asyncio
import time

import aiohttp
from aiohttp import web

from connectors.base import ConnectorContext, StateAPI
from connectors.webchat.connector import WebchatConnector
from connectors.webchat.settings import Site, WebchatSettings
from vocab.models import IngestResult

BUDGET = 15 * 1024
ORIGIN = "https://shop.example"


class Memory(StateAPI):
    def __init__(self) -> None:
        self.data: dict[str, str] = {}

    async def get(self, key: str) -> str | None:
        return self.data.get(key)

    async def set(self, key: str, value: str) -> None:
        self.data[key] = value


async def nothing(items: object) -> list[IngestResult]:
    return []


async def unused(*args: object, **kw: object) -> None:
    return None


def wire_size(resp: aiohttp.ClientResponse, body: bytes) -> int:
    head = f"HTTP/1.1 {resp.status} {resp.reason}\r\n".encode()
    head += b"".join(k + b": " + v + b"\r\n" for k, v in resp.raw_headers) + b"\r\n"
    return len(head) + len(body)


async def main() -> None:
    async with aiohttp.ClientSession(auto_decompress=False) as session:
        ctx = ConnectorContext(session=session, ingest=nothing, public_url="http://127.0.0.1",
                               max_body_bytes=65536, state=Memory(), run_once=unused,
                               receipt=unused, clock=time.time)
        settings = WebchatSettings(sites=[Site(id="shop", allowed_origins=[ORIGIN])])
        connector = WebchatConnector(settings, ctx)
        await connector.start()
        app = web.Application()
        app.add_routes(connector.routes())
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        base = f"http://127.0.0.1:{runner.addresses[0][1]}"
        try:
            rows = []
            async with session.get(f"{base}/widget.js",
                                   headers={"Accept-Encoding": "gzip, deflate, br"}) as resp:
                body = await resp.read()
                rows.append(("GET /widget.js (gzip)", wire_size(resp, body), len(body)))
            async with session.post(f"{base}/webchat/config?site=shop",
                                    headers={"Origin": ORIGIN}) as resp:
                body = await resp.read()
                rows.append(("POST /webchat/config", wire_size(resp, body), len(body)))
        finally:
            await runner.cleanup()
    total = sum(r[1] for r in rows)
    print(f"{'request':28} {'on the wire':>12} {'body':>8}")
    for name, wire, body_len in rows:
        print(f"{name:28} {wire:>10} B {body_len:>6} B")
    print(f"widget.js uncompressed: {len(connector.script)} B")
    print(f"total first open: {total} B of {BUDGET} B budget "
          f"({'within' if total <= BUDGET else 'OVER'})")


if __name__ == "__main__":
    asyncio.run(main())
