"""Bounded resources (issue 16): caps on connections, idle ones closed, a stalled body 408,
X-Forwarded-For believed from trusted proxies only, a slow client delaying nobody."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
import uvloop
from aiohttp import web

from bridge.connections import ConnectionGuard, Guarded, client_address, is_trusted, networks
from bridge.standins.signing import telegram_secret_headers
from tests.conftest import WEBHOOK_SECRET, HarnessFactory

pytestmark = pytest.mark.backends("sqlite")  # the web server's limits: nothing store-specific


def test_the_guard_caps_untrusted_addresses_only_and_everyone_in_total() -> None:
    guard = ConnectionGuard(max_total=5, max_per_address=2, trusted=["127.0.0.0/8"])
    assert guard.admit("203.0.113.9") and guard.admit("203.0.113.9")
    assert not guard.admit("203.0.113.9")
    assert guard.admit("127.0.0.1") and guard.admit("127.0.0.1") and guard.admit("127.0.0.1")
    assert not guard.admit("127.0.0.1")  # the global cap holds for everyone
    guard.release("203.0.113.9")
    assert guard.admit("203.0.113.9")
    assert is_trusted("::ffff:127.0.0.1", networks(["127.0.0.0/8"]))
    assert not is_trusted("not an address", networks(["0.0.0.0/0"]))


async def open_idle(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port)


async def test_connections_over_the_per_address_cap_get_503_at_once(
    make_harness: HarnessFactory,
) -> None:
    h = await make_harness({"server": {"max_connections_per_address": 3,
                                       "trusted_proxies": []}})
    idle = [await open_idle(h.port) for _ in range(3)]
    reader, writer = await open_idle(h.port)
    assert (await asyncio.wait_for(reader.readline(), 2.0)).startswith(b"HTTP/1.1 503")
    for _, w in [*idle, (reader, writer)]:
        w.close()
    async def healthy() -> int:
        async with h.session.get(f"{h.url}/healthz") as resp:
            return resp.status
    deadline = time.monotonic() + 5
    while await healthy() != 200:  # the closed ones are released
        assert time.monotonic() < deadline


async def test_loopback_is_trusted_by_default_so_a_proxy_is_not_capped(
    make_harness: HarnessFactory,
) -> None:
    h = await make_harness({"server": {"max_connections_per_address": 2}})
    idle = [await open_idle(h.port) for _ in range(6)]
    async with h.session.get(f"{h.url}/healthz") as resp:
        assert resp.status == 200
    for _, w in idle:
        w.close()


async def test_idle_connections_close_and_a_stalled_body_gets_408(
    make_harness: HarnessFactory,
) -> None:
    h = await make_harness({"server": {"keepalive_timeout": 0.5, "body_timeout": 0.5}})
    reader, first = await open_idle(h.port)
    assert await asyncio.wait_for(reader.read(), 3.0) == b""  # closed by the bridge
    first.close()
    await first.wait_closed()
    reader, writer = await open_idle(h.port)
    head = "".join(f"{k}: {v}\r\n" for k, v in telegram_secret_headers(WEBHOOK_SECRET).items())
    writer.write(f"POST /webhooks/telegram HTTP/1.1\r\nHost: x\r\n{head}"
                 "Content-Length: 500\r\n\r\n{".encode())
    started = time.monotonic()
    status = await asyncio.wait_for(reader.readline(), 3.0)
    assert status.startswith(b"HTTP/1.1 408") and time.monotonic() - started < 2.0
    writer.close()


async def test_slow_clients_do_not_delay_valid_webhooks(make_harness: HarnessFactory) -> None:
    h = await make_harness()
    slow = [await open_idle(h.port) for _ in range(100)]
    for _, writer in slow:  # each starts a request and stalls in its headers
        writer.write(b"POST /webhooks/telegram HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    latencies = []
    for i in range(20):
        update = json.dumps(h.telegram.text_update(chat_id=100 + i, text="hi")).encode()
        started = time.monotonic()
        async with h.session.post(f"{h.url}/webhooks/telegram", data=update,
                                  headers=telegram_secret_headers(WEBHOOK_SECRET)) as resp:
            assert resp.status == 200
        latencies.append(time.monotonic() - started)
    for _, writer in slow:
        writer.close()
    assert max(latencies) < 1.0, latencies


@pytest.fixture
async def echo_remote() -> AsyncIterator[str]:
    async def remote(request: web.Request) -> web.StreamResponse:
        return web.Response(text=request.remote or "")

    app = web.Application(middlewares=[client_address(networks(["127.0.0.0/8", "10.0.0.0/8"]))])
    app.router.add_get("/", remote)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}/"
    await runner.cleanup()


async def test_x_forwarded_for_is_read_from_the_right_past_trusted_hops(
    echo_remote: str,
) -> None:
    async with aiohttp.ClientSession() as session:
        for forwarded, seen in [("203.0.113.5", "203.0.113.5"),
                                ("1.2.3.4, 203.0.113.5, 10.0.0.2", "203.0.113.5"),
                                ("", "127.0.0.1")]:
            headers = {"X-Forwarded-For": forwarded} if forwarded else {}
            async with session.get(echo_remote, headers=headers) as resp:
                assert await resp.text() == seen


async def test_the_503_reaches_clients_under_uvloop_too() -> None:
    """`bridge run` serves on uvloop, whose transports are not asyncio.WriteTransport."""

    async def run() -> bytes:
        guard = ConnectionGuard(max_total=0, max_per_address=0, trusted=[])
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: Guarded(asyncio.Protocol(), guard),
                                          "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        line = await asyncio.wait_for(reader.readline(), 2.0)
        writer.close()
        server.close()
        await server.wait_closed()
        return line

    assert (await asyncio.to_thread(uvloop.run, run())).startswith(b"HTTP/1.1 503")
