"""Each visitor's conversation as the page sees it: the visitor's acknowledged messages and
the agents' replies, with the store's message ids, kept in the connector's state (so a
reconnecting page can ask for what it missed), and the sockets open for that visitor."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from typing import Any

from aiohttp import web

from connectors.base import StateAPI

Item = dict[str, Any]


class Mailbox:
    def __init__(self, state: StateAPI, size: int) -> None:
        self.state = state
        self.size = size
        self._locks: dict[str, asyncio.Lock] = {}
        self.sockets: dict[str, set[web.WebSocketResponse]] = {}
        self.waiters: dict[str, set[asyncio.Event]] = {}  # long-polls waiting for news

    def _lock(self, address: str) -> asyncio.Lock:
        lock = self._locks.get(address)
        if lock is None:
            if len(self._locks) > 10000:
                self._locks = {a: k for a, k in self._locks.items() if k.locked()}
            lock = self._locks[address] = asyncio.Lock()
        return lock

    async def items(self, address: str) -> list[Item]:
        raw = await self.state.get(f"log:{address}")
        if not raw:
            return []
        try:
            items = json.loads(raw)
        except ValueError:
            return []
        return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []

    async def add(self, address: str, item: Item) -> bool:
        """Append `item` unless one with its id is there (a resend); True if appended."""
        async with self._lock(address):
            items = await self.items(address)
            found = next((i for i in items if i.get("id") == item["id"]), None)
            if found is not None:  # a resend; or the text of a message whose file came first
                if found.get("text") or not item.get("text"):
                    return False
                found["text"] = item["text"]
                await self.state.set(f"log:{address}", json.dumps(items[-self.size:]))
                return True
            items.append(item)
            items.sort(key=lambda i: int(i.get("id", 0)))
            await self.state.set(f"log:{address}", json.dumps(items[-self.size:]))
            return True

    async def add_file(self, address: str, item: Item, file: Item) -> Item:
        """Attach `file` to the message `item["id"]` (made from `item` if not there yet); a
        file already there (same name and size: a resend) is not added twice."""
        async with self._lock(address):
            items = await self.items(address)
            found = next((i for i in items if i.get("id") == item["id"]), None)
            if found is None:
                found = {**item, "files": []}
                items.append(found)
                items.sort(key=lambda i: int(i.get("id", 0)))
            files = found.setdefault("files", [])
            if not any(f.get("name") == file["name"] and f.get("size") == file["size"]
                       for f in files):
                files.append(file)
            await self.state.set(f"log:{address}", json.dumps(items[-self.size:]))
            return found

    async def after(self, address: str, after: int) -> list[Item]:
        return [i for i in await self.items(address) if int(i.get("id", 0)) > after]

    async def has_visitor_messages(self, address: str) -> bool:
        return any(i.get("from") == "visitor" for i in await self.items(address))

    # -- live sockets -------------------------------------------------------------------------
    def join(self, address: str, ws: web.WebSocketResponse) -> None:
        self.sockets.setdefault(address, set()).add(ws)

    def leave(self, address: str, ws: web.WebSocketResponse) -> None:
        open_ = self.sockets.get(address)
        if open_ is not None:
            open_.discard(ws)
            if not open_:
                del self.sockets[address]

    async def wait(self, address: str, seconds: float) -> None:
        """Until something is pushed to `address`, or `seconds` pass (a long-poll)."""
        news = asyncio.Event()
        self.waiters.setdefault(address, set()).add(news)
        try:
            async with asyncio.timeout(seconds):
                await news.wait()
        except TimeoutError:
            pass
        finally:
            waiting = self.waiters.get(address)
            if waiting is not None:
                waiting.discard(news)
                if not waiting:
                    del self.waiters[address]

    def wake(self) -> None:
        """Every waiting long-poll answers now (at shutdown)."""
        for group in self.waiters.values():
            for news in group:
                news.set()

    async def push(self, address: str, frame: Item,
                   skip: web.WebSocketResponse | None = None) -> None:
        for news in self.waiters.get(address, ()):
            news.set()
        for ws in list(self.sockets.get(address, ())):
            if ws is not skip and not ws.closed:
                try:
                    await ws.send_json(frame)
                except (ConnectionError, RuntimeError):
                    self.leave(address, ws)

    def all_sockets(self) -> Iterable[web.WebSocketResponse]:
        return [ws for group in self.sockets.values() for ws in group]


def message_frame(item: Item) -> Item:
    return {"type": "message", **item}
