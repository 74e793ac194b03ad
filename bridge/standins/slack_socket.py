"""The Slack stand-in's Socket Mode side: ``apps.connections.open`` and the websocket that
delivers envelopes and reads the client's acknowledgements."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp
from aiohttp import web

from bridge.standins.base import Injection, JSONDict, StandinBase, read_params


@dataclass(frozen=True)
class SocketAck:
    """One Socket Mode acknowledgement the client sent: ``{"envelope_id": ..., "payload"?}``."""

    envelope_id: str
    payload: JSONDict | None
    at: float  # time.monotonic() when the stand-in read it
    connection: str


class SocketModeStandin(StandinBase):
    """Socket Mode for `SlackStandin` (its subclass), which answers errors the Slack way."""

    def __init__(self, *, app_id: str, app_token: str | None) -> None:
        super().__init__()
        self.app_id = app_id
        # `apps.connections.open` takes the app-level token, not the bot token, so it has its
        # own route (registered here, before the subclass's generic /api/{method}).
        self.app_token = app_token
        self.acks: list[SocketAck] = []
        self.on_ack: Callable[[SocketAck], None] | None = None  # called as each ack is read
        self.socket_received: list[JSONDict] = []  # anything else the client sent
        self.socket_connections = 0  # websocket connections accepted so far
        self._sockets: dict[str, web.WebSocketResponse] = {}  # open ones, oldest first
        self._socket_changed = asyncio.Event()
        self.app.on_shutdown.append(self._close_sockets)
        self.app.router.add_post("/api/apps.connections.open", self._h_connections_open)
        self.app.router.add_get("/socket/{connection}", self._h_socket)

    def _error(
        self, method: str, params: JSONDict, request: web.Request, error: str, status: int = 200
    ) -> web.Response:
        raise NotImplementedError

    def _injected(
        self, method: str, params: JSONDict, request: web.Request, inj: Injection
    ) -> web.Response:
        raise NotImplementedError

    async def socket_push(
        self,
        payload: JSONDict,
        type: str = "events_api",
        *,
        envelope_id: str | None = None,
        retry_attempt: int = 0,
        retry_reason: str = "",
        accepts_response_payload: bool | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> str:
        """Deliver an envelope (``events_api``, ``interactive``, ``slash_commands``) over the
        newest open connection, waiting up to `timeout` for one; returns its ``envelope_id``."""
        ws = await self._socket(timeout)
        envelope_id = envelope_id or str(uuid.uuid4())
        envelope: JSONDict = {
            "envelope_id": envelope_id,
            "payload": payload,
            "type": type,
            "accepts_response_payload": (
                type != "events_api" if accepts_response_payload is None
                else accepts_response_payload
            ),
        }
        if type == "events_api":
            envelope["retry_attempt"] = retry_attempt
            envelope["retry_reason"] = retry_reason
        await ws.send_json(envelope)
        return envelope_id

    def acks_for(self, envelope_id: str) -> list[SocketAck]:
        return [a for a in self.acks if a.envelope_id == envelope_id]

    async def wait_ack(self, envelope_id: str, timeout: float = 5.0) -> SocketAck:  # noqa: ASYNC109
        """The first acknowledgement of `envelope_id`; `TimeoutError` if none comes in time."""
        await self._socket_wait(lambda: bool(self.acks_for(envelope_id)), timeout,
                                f"an ack of envelope {envelope_id}")
        return self.acks_for(envelope_id)[0]

    async def wait_socket_connections(self, count: int, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Wait until `count` connections were accepted in all and one of them is open."""
        await self._socket_wait(lambda: self.socket_connections >= count and bool(self._sockets),
                                timeout, f"{count} Socket Mode connection(s)")

    @property
    def socket_open(self) -> int:
        """How many Socket Mode connections are open now."""
        return sum(1 for ws in self._sockets.values() if not ws.closed)

    async def socket_disconnect(self, reason: str = "refresh_requested") -> None:
        """Send Slack's ``disconnect`` message on the newest connection (it stays open; the
        client is expected to open a new connection and close this one)."""
        ws = await self._socket(1.0)
        await ws.send_json({"type": "disconnect", "reason": reason,
                            "debug_info": {"host": "standin"}})

    async def socket_drop(self) -> None:
        """Close every open connection from the server side (a close frame, code 1001)."""
        for ws in list(self._sockets.values()):
            await ws.close(code=aiohttp.WSCloseCode.GOING_AWAY, message=b"standin drop")

    async def _socket(self, timeout: float) -> web.WebSocketResponse:  # noqa: ASYNC109
        await self._socket_wait(lambda: self.socket_open > 0, timeout,
                                "an open Socket Mode connection")
        return [ws for ws in self._sockets.values() if not ws.closed][-1]

    async def _socket_wait(self, done: Callable[[], bool], timeout: float, what: str) -> None:  # noqa: ASYNC109
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not done():
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"SlackStandin: waited {timeout}s for {what}; acks: "
                                   f"{[a.envelope_id for a in self.acks]}, "
                                   f"connections: {self.socket_connections}")
            try:
                await asyncio.wait_for(self._socket_changed.wait(), remaining)
            except TimeoutError:
                continue

    def _socket_notify(self) -> None:
        changed, self._socket_changed = self._socket_changed, asyncio.Event()
        changed.set()

    async def _h_connections_open(self, request: web.Request) -> web.Response:
        method = "apps.connections.open"
        params = await read_params(request)
        header = request.headers.get("Authorization", "")
        token = header.removeprefix("Bearer ") if header.startswith("Bearer ") else None
        token = token or params.pop("token", None)
        if not token:
            return self._error(method, params, request, "not_authed")
        if not token.startswith("xapp-"):
            return self._error(method, params, request, "not_allowed_token_type")
        if token != self.app_token:
            return self._error(method, params, request, "invalid_auth")
        if self._failures or self._delays:
            injection = await self._apply_injections(method)
            if injection is not None:
                return self._injected(method, params, request, injection)
        connection = secrets.token_hex(8)
        self._record(method, params, request)
        return web.json_response(
            {"ok": True, "url": f"ws://127.0.0.1:{self.port}/socket/{connection}"}
        )

    async def _h_socket(self, request: web.Request) -> web.WebSocketResponse:
        connection = request.match_info["connection"]
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._sockets[connection] = ws
        self.socket_connections += 1
        try:
            await ws.send_json({
                "type": "hello",
                "num_connections": self.socket_open,
                "debug_info": {"host": "standin", "build_number": 1,
                               "approximate_connection_time": 3600},
                "connection_info": {"app_id": self.app_id},
            })
            self._socket_notify()
            async for msg in ws:
                if msg.type == aiohttp.WSMsgType.TEXT:
                    self._socket_text(connection, msg.data)
        finally:
            self._sockets.pop(connection, None)
            self._socket_notify()
        return ws

    def _socket_text(self, connection: str, data: str) -> None:
        try:
            message = json.loads(data)
        except ValueError:
            message = {"unparsed": data}
        if isinstance(message, dict) and isinstance(message.get("envelope_id"), str):
            ack = SocketAck(message["envelope_id"], message.get("payload"), time.monotonic(),
                            connection)
            self.acks.append(ack)
            if self.on_ack is not None:
                self.on_ack(ack)
        else:
            self.socket_received.append(message if isinstance(message, dict) else {"data": data})
        self._socket_notify()

    async def _close_sockets(self, app: web.Application) -> None:
        for ws in list(self._sockets.values()):
            await ws.close(code=aiohttp.WSCloseCode.GOING_AWAY, message=b"standin stopping")
