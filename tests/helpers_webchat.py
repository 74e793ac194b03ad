"""The web chat's test setup: a local web site (its own origin) whose pages carry the widget's
script tag, and the real bridge with [connectors.webchat] allowing that origin."""

from __future__ import annotations

import hashlib
import hmac
import html
import socket
import struct
import time
import zlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import web
from playwright.async_api import Locator, Page

from bridge.app import Bridge
from bridge.standins.config import TomlValue
from tests.conftest import Harness, HarnessFactory
from tests.waiting import poll

SITE = "shop"


def png(size: int = 8, rgb: tuple[int, int, int] = (200, 80, 40)) -> bytes:
    """A real PNG of one colour (an agent's picture)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    rows = b"".join(b"\x00" + bytes(rgb) * size for _ in range(size))
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
IDENTITY_SECRET = "site-identity-secret-0123456789"


def user_hash(user_id: str, secret: str = IDENTITY_SECRET) -> str:
    return hmac.new(secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()


@dataclass
class ShopSite:
    """A shop's web site on 127.0.0.1:<port>: `/` carries the widget (`?user_id=&user_hash=`
    become data-user-id/data-user-hash), `/plain` does not."""

    bridge_url: str = ""
    port: int = 0
    lang: str = "en"
    extra: str = ""
    pages: list[str] = field(default_factory=list)

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def page(self, request: web.Request) -> web.Response:
        self.pages.append(request.path_qs)
        attrs = f'data-site="{html.escape(request.query.get("site", SITE))}"'
        for key in ("user_id", "user_hash"):
            if key in request.query:
                attrs += f' data-{key.replace("_", "-")}="{html.escape(request.query[key])}"'
        body = (f'<!doctype html><html lang="{self.lang}"><head><meta charset="utf-8">'
                f"<title>Acme shop</title><style>body{{font:16px serif;color:#222}}"
                f"button{{color:red}}</style></head><body><h1>Acme shop</h1>"
                f"<p>Warm socks, 12 EUR.</p>{self.extra}"
                f'<script src="{self.bridge_url}/widget.js" {attrs} async></script>'
                f"</body></html>")
        return web.Response(text=body, content_type="text/html")


@asynccontextmanager
async def shop_site(lang: str = "en") -> AsyncIterator[ShopSite]:
    site = ShopSite(lang=lang)
    app = web.Application()
    app.router.add_get("/", site.page)
    app.router.add_get("/other", site.page)

    async def avatar(_: web.Request) -> web.Response:
        return web.Response(body=png(), content_type="image/png")
    app.router.add_get("/avatar.png", avatar)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    tcp = web.TCPSite(runner, "127.0.0.1", 0)
    await tcp.start()
    site.port = int(runner.addresses[0][1])
    try:
        yield site
    finally:
        await runner.cleanup()


async def webchat_harness(make_harness: HarnessFactory, site: ShopSite,
                          clock: Callable[[], float] = time.time,
                          tables: dict[str, dict[str, TomlValue]] | None = None,
                          env: dict[str, str] | None = None,
                          **keys: TomlValue) -> Harness:
    """The real bridge with one web chat site allowing `site`'s origin; `keys` go into the
    site's table."""
    table: dict[str, TomlValue] = {
        "enabled": True, "avatar_origins": [site.origin],
        "sites": [{"id": SITE, "allowed_origins": [site.origin], "title": "Chat with Acme",
                   "identity_secret": IDENTITY_SECRET, **keys}],
    }
    h = await make_harness({"connectors.webchat": table, **(tables or {})}, clock=clock,
                           env=env)
    site.bridge_url = h.url
    return h


async def reopen_on_same_port(h: Harness, timeout: float = 10.0) -> Bridge:
    """A new bridge on the old one's port, config and store (after `h.bridge.stop()`); the
    port is free once the old connections have finished closing."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)

    async def bound() -> str:
        try:
            sock.bind(("127.0.0.1", h.port))
        except OSError as exc:
            return str(exc)
        return "bound"
    await poll(bound, lambda got: got == "bound", f"port {h.port} free again", timeout)
    return Bridge(h.bridge.config, sock=sock, clock=h.bridge.clock)


async def webchat_thread(h: Harness, timeout: float = 5.0) -> str:
    """The Slack thread of the newest conversation with a web chat message, once it has one
    (its replies may go elsewhere: an address left offline)."""
    sql = ("SELECT c.slack_thread_ts FROM conversations c WHERE EXISTS (SELECT 1 FROM"
           " messages m WHERE m.conversation_id = c.id AND m.connector = 'webchat')"
           " ORDER BY c.id DESC LIMIT 1")

    async def read() -> list[tuple[object, ...]]:
        return [tuple(r) for r in h.rows(sql)]
    got = await poll(read, lambda rows: bool(rows) and rows[0][0] is not None,
                     "a Slack thread for a web chat conversation", timeout)
    return str(got[0][0])


def inbound_texts(h: Harness) -> list[str]:
    return [str(r[0]) for r in h.rows(
        "SELECT text FROM messages WHERE connector = 'webchat' AND direction = 'in'"
        " ORDER BY id")]


def chat_button(page: Page) -> Locator:
    return page.get_by_role("button", name="Open chat")


def chat_log(page: Page) -> Locator:
    return page.get_by_role("log")


async def open_and_say(page: Page, text: str) -> None:
    """Open the window (if closed), type `text`, press Enter."""
    box = page.get_by_role("textbox", name="Message")
    if not await box.is_visible():
        await chat_button(page).click()
    await box.fill(text)
    await box.press("Enter")
