"""Shared plumbing for the stand-in servers: recording, waiting, failure injection, lifecycle."""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

from aiohttp import web

JSONDict = dict[str, Any]


@dataclass
class RecordedCall:
    """One API request received by a stand-in (successful or failed)."""

    method: str
    params: dict[str, Any]
    headers: dict[str, str]
    at: float = field(default_factory=time.monotonic)
    status: int = 200
    ok: bool = True


@dataclass
class Injection:
    """A queued failure for one method."""

    status: int
    retry_after: int | None
    error: str | None


async def read_params(request: web.Request) -> dict[str, Any]:
    """Merge query string, form/multipart fields and a JSON object body into one dict.

    Form values stay the raw strings as sent; multipart file parts become
    ``{"filename", "content_type", "content"}`` dicts.
    """
    params: dict[str, Any] = dict(request.query) if request.query_string else {}
    if not request.body_exists:
        return params
    ctype = request.content_type
    if ctype == "application/json":
        raw = await request.read()
        if raw:
            body = json.loads(raw)
            if isinstance(body, dict):
                params.update(body)
    elif ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.post()
        for key, value in form.items():
            if isinstance(value, web.FileField):
                params[key] = {
                    "filename": value.filename,
                    "content_type": value.content_type,
                    "content": value.file.read(),
                }
            else:
                params[key] = value
    return params


class StandinBase:
    """Base class: an aiohttp app on loopback that records calls and can be told to fail."""

    def __init__(self) -> None:
        self.calls: list[RecordedCall] = []
        self._ok_counts: dict[str, int] = {}
        self._failures: dict[str, deque[Injection]] = {}
        self._delays: dict[str, deque[float]] = {}
        self._waiting = 0
        self._changed = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._port = 0
        self._host = "127.0.0.1"
        self.app = web.Application(client_max_size=64 * 1024 * 1024)
        self.app.router.add_get("/_standin/stats", self._h_stats)

    # ------------------------------------------------------------------ lifecycle
    @property
    def port(self) -> int:
        if not self._port:
            raise RuntimeError("stand-in not started")
        return self._port

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        self._runner = runner
        self._host = host
        self._port = int(runner.addresses[0][1])

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            self._on_stop()
            await runner.cleanup()

    def _on_stop(self) -> None:
        """Hook for subclasses to release long-running handlers before shutdown."""

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # ------------------------------------------------------------------ recording
    def _record(
        self,
        method: str,
        params: dict[str, Any],
        request: web.Request,
        status: int = 200,
        ok: bool = True,
    ) -> None:
        self.calls.append(
            RecordedCall(method, params, dict(request.headers), time.monotonic(), status, ok)
        )
        if ok:
            self._ok_counts[method] = self._ok_counts.get(method, 0) + 1
        if self._waiting:
            changed, self._changed = self._changed, asyncio.Event()
            changed.set()

    def calls_to(self, method: str, *, ok_only: bool = True) -> list[RecordedCall]:
        return [c for c in self.calls if c.method == method and (c.ok or not ok_only)]

    async def wait_for(
        self,
        method: str,
        count: int,
        timeout: float = 10.0,  # noqa: ASYNC109
    ) -> list[RecordedCall]:
        """Wait until at least ``count`` successful calls to ``method`` were received."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        self._waiting += 1
        try:
            while self._ok_counts.get(method, 0) < count:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise TimeoutError(self._timeout_message(method, count, timeout))
                try:
                    await asyncio.wait_for(self._changed.wait(), remaining)
                except TimeoutError:
                    raise TimeoutError(self._timeout_message(method, count, timeout)) from None
        finally:
            self._waiting -= 1
        return self.calls_to(method)

    def _timeout_message(self, method: str, count: int, timeout: float) -> str:
        seen: dict[str, list[int]] = {}
        for c in self.calls:
            seen.setdefault(c.method, []).append(c.status if c.ok else -c.status)
        summary = ", ".join(f"{m}: {st}" for m, st in seen.items()) or "nothing"
        return (
            f"{type(self).__name__}: waited {timeout}s for {count} ok call(s) to {method!r}, "
            f"got {self._ok_counts.get(method, 0)}; received (status per call, negative = "
            f"failed): {summary}"
        )

    def stats(self) -> JSONDict:
        return {"calls": dict(self._ok_counts)}

    async def _h_stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.stats())

    # ------------------------------------------------------------------ injection
    def fail_next(
        self,
        method: str,
        *,
        status: int = 500,
        count: int = 1,
        retry_after: int | None = None,
        error: str | None = None,
    ) -> None:
        """Make the next ``count`` calls to ``method`` fail (FIFO per method)."""
        if status == 429 and retry_after is None:
            retry_after = 1
        queue = self._failures.setdefault(method, deque())
        for _ in range(count):
            queue.append(Injection(status, retry_after, error))

    def delay_next(self, method: str, seconds: float, count: int = 1) -> None:
        """Sleep ``seconds`` before answering each of the next ``count`` calls to ``method``."""
        queue = self._delays.setdefault(method, deque())
        for _ in range(count):
            queue.append(seconds)

    async def _apply_injections(self, method: str) -> Injection | None:
        """Run a queued delay, then return a queued failure, for this call (if any)."""
        delays = self._delays.get(method)
        if delays:
            seconds = delays.popleft()
            if not delays:
                del self._delays[method]
            await asyncio.sleep(seconds)
        failures = self._failures.get(method)
        if failures:
            injection = failures.popleft()
            if not failures:
                del self._failures[method]
            return injection
        return None
