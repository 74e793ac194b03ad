"""Slack stand-ins: a Web API server for slack_sdk/Bolt (with a Socket Mode websocket), and an
Events API sender."""

from __future__ import annotations

import asyncio
import itertools
import json
import mimetypes
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import aiohttp
from aiohttp import web

from bridge.standins.base import Injection, JSONDict, StandinBase, read_params
from bridge.standins.signing import slack_signature_headers

_MSG_OPTIONAL = ("username", "icon_url", "icon_emoji")


@dataclass(frozen=True)
class SocketAck:
    """One Socket Mode acknowledgement the client sent: ``{"envelope_id": ..., "payload"?}``."""

    envelope_id: str
    payload: JSONDict | None
    at: float  # time.monotonic() when the stand-in read it
    connection: str


class TsClock:
    """Slack-style ``"seconds.micros"`` timestamps: distinct and strictly increasing."""

    def __init__(self) -> None:
        self._last = 0

    def next(self) -> str:
        us = max(self._last + 1, int(time.time() * 1_000_000))
        self._last = us
        return f"{us // 1_000_000}.{us % 1_000_000:06d}"


def _json_value(value: Any) -> Any:
    """Form-encoded clients send lists/dicts as JSON strings; decode those."""
    if isinstance(value, str) and value[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


class SlackStandin(StandinBase):
    """Enough of the Slack Web API for ``AsyncWebClient(base_url=standin.base_url)`` and Bolt."""

    def __init__(
        self,
        *,
        team_id: str = "T0BRIDGE",
        bot_user_id: str = "U0BOT",
        bot_id: str = "B0BOT",
        bot_token: str | None = "xoxb-standin",
        app_id: str = "A0BRIDGE",
        app_token: str | None = None,
    ) -> None:
        super().__init__()
        self.team_id = team_id
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.bot_token = bot_token
        self.app_id = app_id
        self.messages: list[JSONDict] = []
        self.ephemerals: list[JSONDict] = []
        self.files: dict[str, JSONDict] = {}
        self.users: dict[str, JSONDict] = {}
        self.reactions: dict[tuple[str, str], list[str]] = {}
        self.posts: list[tuple[float, str]] = []
        self._by_key: dict[tuple[str, str], JSONDict] = {}
        self._clock = TsClock()
        self._file_seq = itertools.count(1)
        self._auth = f"Bearer {bot_token}" if bot_token else None
        self._methods: dict[str, Callable[[JSONDict], JSONDict]] = {
            "auth.test": self._m_auth_test,
            "chat.postMessage": self._m_post_message,
            "chat.update": self._m_update,
            "chat.postEphemeral": self._m_post_ephemeral,
            "users.info": self._m_users_info,
            "reactions.add": self._m_reactions_add,
            "reactions.remove": self._m_reactions_remove,
            "conversations.info": self._m_conversations_info,
            "files.getUploadURLExternal": self._m_get_upload_url,
            "files.completeUploadExternal": self._m_complete_upload,
        }
        # Socket Mode: `apps.connections.open` takes the app-level token, not the bot token,
        # so it has its own route (registered before the generic one).
        self.app_token = app_token
        self.acks: list[SocketAck] = []
        self.on_ack: Callable[[SocketAck], None] | None = None  # called as each ack is read
        self.socket_received: list[JSONDict] = []  # anything else the client sent
        self.socket_connections = 0  # websocket connections accepted so far
        self._sockets: dict[str, web.WebSocketResponse] = {}  # open ones, oldest first
        self._socket_changed = asyncio.Event()
        self.app.on_shutdown.append(self._close_sockets)
        router = self.app.router
        router.add_post("/api/apps.connections.open", self._h_connections_open)
        router.add_get("/socket/{connection}", self._h_socket)
        router.add_route("*", "/api/{method}", self._h_api)
        router.add_post("/upload/{file_id}", self._h_upload)
        router.add_get("/files-pri/{file_id}/{name}", self._h_download)
        router.add_get("/_standin/posts", self._h_posts)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    # ------------------------------------------------------------------ test helpers
    def add_user(
        self,
        user_id: str,
        *,
        display_name: str = "",
        real_name: str = "",
        team_id: str | None = None,
        is_bot: bool = False,
        is_stranger: bool = False,
        deleted: bool = False,
    ) -> None:
        user: JSONDict = {
            "id": user_id,
            "team_id": team_id or self.team_id,
            "name": (display_name or real_name or user_id).lower().replace(" ", "."),
            "real_name": real_name,
            "is_bot": is_bot,
            "deleted": deleted,
            "profile": {"display_name": display_name, "real_name": real_name},
        }
        if is_stranger:
            user["is_stranger"] = True
        self.users[user_id] = user

    def add_file(
        self, content: bytes, *, name: str = "file.bin", mimetype: str | None = None
    ) -> JSONDict:
        """Host a file (as if a user uploaded it); returns the file object for event payloads."""
        fid = f"F{next(self._file_seq):08d}"
        self.files[fid] = {"id": fid, "name": name, "title": name, "content": content}
        return self._file_object(self.files[fid], mimetype)

    def thread(self, channel: str, thread_ts: str) -> list[JSONDict]:
        """The parent (if posted here) and the replies of a thread, in posting order."""
        return [
            m
            for m in self.messages
            if m["channel"] == channel and (m["ts"] == thread_ts or m["thread_ts"] == thread_ts)
        ]

    def parents(self, channel: str) -> list[JSONDict]:
        return [m for m in self.messages if m["channel"] == channel and not m["thread_ts"]]

    # ------------------------------------------------------------------ HTTP handlers
    async def _h_api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = await read_params(request)
        if self._auth is not None and request.headers.get("Authorization") != self._auth:
            token = params.get("token")
            if token is None or f"Bearer {token}" != self._auth:
                missing = token is None and "Authorization" not in request.headers
                return self._error(
                    method, params, request, "not_authed" if missing else "invalid_auth"
                )
        if self._failures or self._delays:
            injection = await self._apply_injections(method)
            if injection is not None:
                return self._injected(method, params, request, injection)
        handler = self._methods.get(method)
        if handler is None:
            return self._error(method, params, request, "unknown_method")
        body = handler(params)
        self._record(method, params, request, 200, body["ok"])
        if method == "chat.postMessage" and body["ok"]:
            self.posts.append((self.calls[-1].at, body["message"]["text"]))
        return web.json_response(body)

    def _error(
        self, method: str, params: JSONDict, request: web.Request, error: str, status: int = 200
    ) -> web.Response:
        self._record(method, params, request, status, False)
        return web.json_response({"ok": False, "error": error}, status=status)

    def _injected(
        self, method: str, params: JSONDict, request: web.Request, inj: Injection
    ) -> web.Response:
        self._record(method, params, request, inj.status, False)
        if inj.status == 429:
            return web.json_response(
                {"ok": False, "error": inj.error or "ratelimited"},
                status=429,
                headers={"Retry-After": str(inj.retry_after)},
            )
        return web.json_response(
            {"ok": False, "error": inj.error or "internal_error"}, status=inj.status
        )

    async def _h_upload(self, request: web.Request) -> web.Response:
        fid = request.match_info["file_id"]
        if self._failures or self._delays:
            injection = await self._apply_injections("upload")
            if injection is not None:
                self._record("upload", {"file_id": fid}, request, injection.status, False)
                return web.Response(status=injection.status, text=injection.error or "error")
        entry = self.files.get(fid)
        if entry is None:
            self._record("upload", {"file_id": fid}, request, 404, False)
            return web.Response(status=404, text="file not found")
        content = b""
        if request.content_type == "multipart/form-data":
            for value in (await request.post()).values():
                if isinstance(value, web.FileField):
                    content = value.file.read()
                    break
        else:
            content = await request.read()
        entry["content"] = content
        self._record("upload", {"file_id": fid, "size": len(content)}, request)
        return web.Response(text=f"OK - {len(content)}")

    async def _h_download(self, request: web.Request) -> web.Response:
        if self._auth is not None and request.headers.get("Authorization") != self._auth:
            return web.Response(status=302, headers={"Location": "/?redir=login"})
        entry = self.files.get(request.match_info["file_id"])
        if entry is None:
            return web.Response(status=404, text="file not found")
        mimetype = self._file_object(entry)["mimetype"]
        return web.Response(body=entry["content"], content_type=mimetype)

    async def _h_posts(self, request: web.Request) -> web.Response:
        return web.json_response([[at, text] for at, text in self.posts])

    # ------------------------------------------------------------------ Web API methods
    def _m_auth_test(self, p: JSONDict) -> JSONDict:
        return {
            "ok": True,
            "url": "https://standin.slack.com/",
            "team": "Stand-in",
            "user": "bridge",
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _m_post_message(self, p: JSONDict) -> JSONDict:
        channel = p.get("channel")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        text = p.get("text")
        blocks = p.get("blocks")
        if not text and not blocks:
            return {"ok": False, "error": "no_text"}
        ts = self._clock.next()
        thread_ts = p.get("thread_ts") or None
        message: JSONDict = {
            "type": "message",
            "user": self.bot_user_id,
            "bot_id": self.bot_id,
            "app_id": self.app_id,
            "team": self.team_id,
            "text": text or "",
            "ts": ts,
        }
        if thread_ts:
            message["thread_ts"] = thread_ts
        if blocks:
            blocks = message["blocks"] = _json_value(blocks)
        stored: JSONDict = {"channel": channel, "thread_ts": thread_ts, "blocks": blocks, **message}
        for key in _MSG_OPTIONAL:
            value = p.get(key)
            stored[key] = value
            if value:
                message[key] = value
        self.messages.append(stored)
        self._by_key[(channel, ts)] = stored
        return {"ok": True, "channel": channel, "ts": ts, "message": message}

    def _m_update(self, p: JSONDict) -> JSONDict:
        channel, ts = p.get("channel") or "", p.get("ts") or ""
        stored = self._by_key.get((channel, ts))
        if stored is None:
            return {"ok": False, "error": "message_not_found"}
        if "text" in p:
            stored["text"] = p["text"] or ""
        if "blocks" in p:
            stored["blocks"] = _json_value(p["blocks"])
        stored["edited"] = {"user": self.bot_user_id, "ts": self._clock.next()}
        message = {k: v for k, v in stored.items() if v is not None and k != "channel"}
        return {
            "ok": True,
            "channel": channel,
            "ts": ts,
            "text": stored["text"],
            "message": message,
        }

    def _m_post_ephemeral(self, p: JSONDict) -> JSONDict:
        if not p.get("channel"):
            return {"ok": False, "error": "channel_not_found"}
        if not p.get("user"):
            return {"ok": False, "error": "user_not_in_channel"}
        if not p.get("text") and not p.get("blocks"):
            return {"ok": False, "error": "no_text"}
        ts = self._clock.next()
        self.ephemerals.append(
            {
                "channel": p["channel"],
                "user": p["user"],
                "ts": ts,
                "text": p.get("text") or "",
                "thread_ts": p.get("thread_ts") or None,
                "blocks": _json_value(p.get("blocks")),
            }
        )
        return {"ok": True, "message_ts": ts}

    def _m_users_info(self, p: JSONDict) -> JSONDict:
        user = self.users.get(p.get("user") or "")
        if user is None:
            return {"ok": False, "error": "user_not_found"}
        return {"ok": True, "user": user}

    def _m_reactions_add(self, p: JSONDict) -> JSONDict:
        key, name = (p.get("channel") or "", p.get("timestamp") or ""), p.get("name") or ""
        if not all(key) or not name:
            return {"ok": False, "error": "no_item_specified" if name else "invalid_name"}
        names = self.reactions.setdefault(key, [])
        if name in names:
            return {"ok": False, "error": "already_reacted"}
        names.append(name)
        return {"ok": True}

    def _m_reactions_remove(self, p: JSONDict) -> JSONDict:
        names = self.reactions.get((p.get("channel") or "", p.get("timestamp") or ""), [])
        if p.get("name") not in names:
            return {"ok": False, "error": "no_reaction"}
        names.remove(p["name"])
        return {"ok": True}

    def _m_conversations_info(self, p: JSONDict) -> JSONDict:
        channel = p.get("channel")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        return {
            "ok": True,
            "channel": {
                "id": channel,
                "name": channel.lower(),
                "is_channel": True,
                "is_private": False,
                "is_member": True,
                "is_archived": False,
                "is_ext_shared": False,
                "context_team_id": self.team_id,
                "created": 1700000000,
            },
        }

    def _m_get_upload_url(self, p: JSONDict) -> JSONDict:
        filename, length = p.get("filename"), p.get("length")
        if not filename or length is None:
            return {"ok": False, "error": "invalid_arguments"}
        fid = f"F{next(self._file_seq):08d}"
        self.files[fid] = {
            "id": fid,
            "name": filename,
            "title": filename,
            "content": b"",
            "length": int(length),
            "alt_txt": p.get("alt_txt"),
        }
        return {
            "ok": True,
            "upload_url": f"http://127.0.0.1:{self.port}/upload/{fid}",
            "file_id": fid,
        }

    def _m_complete_upload(self, p: JSONDict) -> JSONDict:
        items = _json_value(p.get("files") or "[]")
        if not isinstance(items, list) or not items:
            return {"ok": False, "error": "invalid_arguments"}
        if any(not isinstance(i, dict) or i.get("id") not in self.files for i in items):
            return {"ok": False, "error": "file_not_found"}
        channel = p.get("channel_id") or None
        thread_ts = p.get("thread_ts") or None
        comment = p.get("initial_comment") or ""
        out: list[JSONDict] = []
        for item in items:
            entry = self.files[item["id"]]
            entry.update(
                title=item.get("title") or entry["name"],
                channel=channel,
                thread_ts=thread_ts,
                initial_comment=comment,
                completed=True,
            )
            out.append(self._file_object(entry))
        if channel:
            ts = self._clock.next()
            stored: JSONDict = {
                "channel": channel,
                "thread_ts": thread_ts,
                "blocks": None,
                "type": "message",
                "subtype": "file_share",
                "user": self.bot_user_id,
                "bot_id": self.bot_id,
                "app_id": self.app_id,
                "team": self.team_id,
                "text": comment,
                "ts": ts,
                "files": out,
                "username": None,
                "icon_url": None,
                "icon_emoji": None,
            }
            self.messages.append(stored)
            self._by_key[(channel, ts)] = stored
        return {"ok": True, "files": out}

    def _file_object(self, entry: JSONDict, mimetype: str | None = None) -> JSONDict:
        name: str = entry["name"]
        mimetype = mimetype or mimetypes.guess_type(name)[0] or "application/octet-stream"
        url = f"http://127.0.0.1:{self._port}/files-pri/{entry['id']}/{name}"
        return {
            "id": entry["id"],
            "name": name,
            "title": entry["title"],
            "mimetype": mimetype,
            "filetype": name.rsplit(".", 1)[-1] if "." in name else "binary",
            "size": len(entry["content"]),
            "user": self.bot_user_id,
            "url_private": url,
            "url_private_download": url,
            "permalink": f"https://standin.slack.com/files/{self.bot_user_id}/{entry['id']}",
        }


    # ------------------------------------------------------------------ Socket Mode
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


class SlackEventSender:
    """Plays Slack delivering Events API / interactivity requests to the bridge."""

    def __init__(
        self,
        bridge_url: str,
        signing_secret: str,
        session: aiohttp.ClientSession,
        team_id: str = "T0BRIDGE",
        api_app_id: str = "A0BRIDGE",
        bot_user_id: str = "U0BOT",
    ) -> None:
        self.bridge_url = bridge_url
        self.signing_secret = signing_secret
        self.session = session
        self.team_id = team_id
        self.api_app_id = api_app_id
        self.bot_user_id = bot_user_id
        self._clock = TsClock()
        self._seq = itertools.count(1)

    def message_event(
        self,
        *,
        channel: str,
        user: str,
        text: str,
        ts: str | None = None,
        thread_ts: str | None = None,
        user_team: str | None = None,
        bot_id: str | None = None,
        subtype: str | None = None,
        event_id: str | None = None,
        files: list[JSONDict] | None = None,
    ) -> JSONDict:
        """A realistic ``event_callback`` envelope carrying one ``message`` event."""
        ts = ts or self._clock.next()
        team = user_team or self.team_id
        event: JSONDict = {
            "type": "message",
            "channel": channel,
            "user": user,
            "text": text,
            "ts": ts,
            "event_ts": ts,
            "channel_type": "channel",
            "team": team,
            "user_team": team,
            "source_team": team,
        }
        if files:
            event["files"] = files
            event["upload"] = True
            subtype = subtype or "file_share"
        if subtype:
            event["subtype"] = subtype
        if bot_id:
            event["bot_id"] = bot_id
        elif subtype in (None, "file_share", "thread_broadcast"):
            event["client_msg_id"] = str(uuid.uuid4())
        if thread_ts:
            event["thread_ts"] = thread_ts
        seq = next(self._seq)
        return {
            "token": "standin-verification-token",
            "team_id": self.team_id,
            "context_team_id": self.team_id,
            "context_enterprise_id": None,
            "api_app_id": self.api_app_id,
            "event": event,
            "type": "event_callback",
            "event_id": event_id or f"Ev{seq:05d}{secrets.token_hex(3).upper()}",
            "event_time": int(float(ts)),
            "authorizations": [
                {
                    "enterprise_id": None,
                    "team_id": self.team_id,
                    "user_id": self.bot_user_id,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": False,
            "event_context": f"4-{secrets.token_urlsafe(24)}",
        }

    async def post(
        self,
        envelope: JSONDict | bytes,
        *,
        retry_num: int | None = None,
        timestamp: int | None = None,
        sign: bool = True,
        secret: str | None = None,
        content_type: str = "application/json",
    ) -> tuple[int, str]:
        """POST a (signed) raw body to the bridge; returns (status, response text)."""
        body = envelope if isinstance(envelope, bytes) else json.dumps(envelope).encode()
        if sign:
            headers = slack_signature_headers(
                self.signing_secret if secret is None else secret, body, timestamp, content_type
            )
        else:
            headers = {"Content-Type": content_type}
        if retry_num is not None:
            headers["X-Slack-Retry-Num"] = str(retry_num)
            headers["X-Slack-Retry-Reason"] = "http_timeout"
        async with self.session.post(self.bridge_url, data=body, headers=headers) as resp:
            return resp.status, await resp.text()

    async def post_interaction(self, payload: JSONDict) -> tuple[int, str]:
        """POST an interactivity payload form-encoded as ``payload=<json>``, signed."""
        body = urlencode({"payload": json.dumps(payload)}).encode()
        return await self.post(body, content_type="application/x-www-form-urlencoded")

    # -- interactivity and message changes, shaped like Slack's own payloads ----------------
    def block_action(self, *, channel: str, user: str, message: JSONDict, action_id: str,
                     value: str) -> JSONDict:
        """A ``block_actions`` payload: `user` clicked a button on `message`."""
        return {
            "type": "block_actions",
            "team": {"id": self.team_id, "domain": "standin"},
            "user": {"id": user, "username": user.lower(), "team_id": self.team_id},
            "api_app_id": self.api_app_id,
            "token": "standin-verification-token",
            "container": {"type": "message", "message_ts": message["ts"], "channel_id": channel,
                          "is_ephemeral": False},
            "trigger_id": f"{next(self._seq)}.{secrets.token_hex(6)}",
            "channel": {"id": channel, "name": channel.lower()},
            "message": {k: v for k, v in message.items() if k != "channel" and v is not None},
            "response_url": "https://hooks.slack.com/actions/T0/1/standin",
            "actions": [{"type": "button", "action_id": action_id, "block_id": "standin",
                         "value": value, "action_ts": self._clock.next()}],
        }

    def message_shortcut(self, *, channel: str, user: str, message: JSONDict,
                         callback_id: str) -> JSONDict:
        """A ``message_action`` payload: `user` ran a message shortcut on `message`."""
        return {
            "type": "message_action",
            "callback_id": callback_id,
            "team": {"id": self.team_id, "domain": "standin"},
            "user": {"id": user, "name": user.lower(), "team_id": self.team_id},
            "channel": {"id": channel, "name": channel.lower()},
            "message": {k: v for k, v in message.items() if k != "channel" and v is not None},
            "message_ts": message["ts"],
            "trigger_id": f"{next(self._seq)}.{secrets.token_hex(6)}",
            "response_url": "https://hooks.slack.com/app/T0/1/standin",
            "token": "standin-verification-token",
            "action_ts": self._clock.next(),
        }

    def changed_event(self, *, channel: str, user: str, ts: str, thread_ts: str,
                      old_text: str, new_text: str) -> JSONDict:
        """``message_changed``: `user` edited their message `ts`."""
        envelope = self.message_event(channel=channel, user=user, text="",
                                      subtype="message_changed")
        event = envelope["event"]
        for key in ("user", "text", "client_msg_id", "team", "user_team", "source_team"):
            event.pop(key, None)
        event["hidden"] = True
        base = {"type": "message", "user": user, "ts": ts, "thread_ts": thread_ts,
                "team": self.team_id}
        event["message"] = {**base, "text": new_text,
                            "edited": {"user": user, "ts": event["ts"]}}
        event["previous_message"] = {**base, "text": old_text}
        return envelope

    def deleted_event(self, *, channel: str, user: str, ts: str, thread_ts: str,
                      old_text: str) -> JSONDict:
        """``message_deleted``: `user` deleted their message `ts`."""
        envelope = self.message_event(channel=channel, user=user, text="",
                                      subtype="message_deleted")
        event = envelope["event"]
        for key in ("user", "text", "client_msg_id", "team", "user_team", "source_team"):
            event.pop(key, None)
        event["hidden"] = True
        event["deleted_ts"] = ts
        event["previous_message"] = {"type": "message", "user": user, "ts": ts,
                                     "thread_ts": thread_ts, "text": old_text}
        return envelope
