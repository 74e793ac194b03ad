"""Bounds on the web server's connections (issue 16): a global cap, a per-address cap for
addresses outside `[server] trusted_proxies`, and the client's address as the trusted proxy
says it (X-Forwarded-For is believed only from a trusted proxy).

aiohttp has neither cap: `ConnectionGuard.wrap` wraps the server's protocol factory, so a
connection over a cap is answered 503 and closed before aiohttp sees a byte of it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import time
from collections.abc import Awaitable, Callable, Sequence

import aiohttp
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

log = logging.getLogger(__name__)
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
BUSY = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n"
        b"Retry-After: 1\r\n\r\n")


def networks(items: Sequence[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(item, strict=False) for item in items)


def is_trusted(host: str, trusted: Sequence[Network]) -> bool:
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in net for net in trusted)


class ConnectionGuard:
    """Counts open connections, in total and per address outside the trusted networks."""

    def __init__(self, max_total: int, max_per_address: int, trusted: Sequence[str]) -> None:
        self.max_total = max_total
        self.max_per_address = max_per_address
        self.trusted = networks(trusted)
        self.total = 0
        self.per_address: dict[str, int] = {}
        self.refused = 0
        self._logged = 0.0

    def admit(self, host: str) -> bool:
        capped = not is_trusted(host, self.trusted)
        if self.total >= self.max_total or (
                capped and self.per_address.get(host, 0) >= self.max_per_address):
            self.refused += 1
            now = time.monotonic()
            if now - self._logged > 10:  # one line per 10 s, whatever the flood
                self._logged = now
                log.warning("refusing connections (%d so far): %d open, %d from %s",
                            self.refused, self.total, self.per_address.get(host, 0), host)
            return False
        self.total += 1
        if capped:
            self.per_address[host] = self.per_address.get(host, 0) + 1
        return True

    def release(self, host: str) -> None:
        self.total -= 1
        count = self.per_address.get(host)
        if count is not None:
            if count <= 1:
                del self.per_address[host]
            else:
                self.per_address[host] = count - 1

    def wrap(self, factory: Callable[[], asyncio.Protocol]) -> Callable[[], asyncio.Protocol]:
        return lambda: Guarded(factory(), self)


class Guarded(asyncio.Protocol):
    """The server's protocol behind the guard: a connection over a cap gets 503, is closed
    and never reaches aiohttp."""

    def __init__(self, inner: asyncio.Protocol, guard: ConnectionGuard) -> None:
        self.inner = inner
        self.guard = guard
        self.host: str | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        host = str(peer[0]) if isinstance(peer, tuple) and peer else ""
        if not self.guard.admit(host):
            write = getattr(transport, "write", None)  # uvloop's transports are no WriteTransport
            if callable(write):
                write(BUSY)
            transport.close()
            return
        self.host = host
        self.inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self.host is not None:
            self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received() if self.host is not None else None

    def pause_writing(self) -> None:
        if self.host is not None:
            self.inner.pause_writing()

    def resume_writing(self) -> None:
        if self.host is not None:
            self.inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.host is not None:
            self.guard.release(self.host)
            self.inner.connection_lost(exc)


class GuardedSite(web.BaseSite):
    """A TCP (or given-socket) site whose connections go through a `ConnectionGuard`."""

    def __init__(self, runner: web.BaseRunner, guard: ConnectionGuard, *,
                 host: str | None = None, port: int = 0,
                 sock: socket.socket | None = None) -> None:
        super().__init__(runner)
        self._guard = guard
        self._host = host
        self._port = port
        self._sock = sock

    @property
    def name(self) -> str:
        return f"guarded {self._host}:{self._port}"

    async def start(self) -> None:
        await super().start()
        loop = asyncio.get_running_loop()
        server = self._runner.server
        assert server is not None
        factory = self._guard.wrap(server)
        if self._sock is not None:
            self._server = await loop.create_server(factory, sock=self._sock,
                                                    backlog=self._backlog)
        else:
            self._server = await loop.create_server(factory, self._host, self._port,
                                                    backlog=self._backlog,
                                                    reuse_address=True)


def client_address(trusted: Sequence[Network]) -> Callable[..., Awaitable[web.StreamResponse]]:
    """Middleware: `request.remote` is the client's address; a trusted proxy's
    X-Forwarded-For is read from the right, skipping trusted hops."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        peer = request.remote or ""
        forwarded = request.headers.get("X-Forwarded-For")
        if forwarded and is_trusted(peer, trusted):
            hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
            client = peer
            for hop in reversed(hops):
                client = hop[:64]
                if not is_trusted(hop, trusted):
                    break
            if client != peer:
                request = request.clone(remote=client)
        return await handler(request)

    return middleware


class QuietServerLog(logging.Filter):
    """On aiohttp's server logger: a request aiohttp itself refuses (bad HTTP, a header too
    long) or a client that goes away is one short line per 10 s, not a traceback each time.
    Anything else (a bug of ours escaping a handler) keeps its traceback."""

    NOISE: tuple[type[BaseException], ...] = (
        HttpProcessingError, ConnectionError, aiohttp.ClientConnectionError,
        aiohttp.ClientPayloadError, asyncio.CancelledError, TimeoutError)

    def __init__(self, every: float = 10.0) -> None:
        super().__init__()
        self.every = every
        self.quieted = 0
        self._logged = -every

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is None or not isinstance(exc, self.NOISE):
            return True
        self.quieted += 1
        now = time.monotonic()
        if now - self._logged >= self.every:
            self._logged = now
            log.info("refused bad HTTP or a client gone (%d so far): %s", self.quieted,
                     str(exc).splitlines()[0][:100] if str(exc) else type(exc).__name__)
        return False
