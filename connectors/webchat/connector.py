"""The web chat connector: serves the widget, its per-site config and the WebSocket.

Every visitor message is stored (through `ctx.ingest`, deduplicated by its `client_id`) before
the page gets its `ack`; agents' replies go into the visitor's mailbox and out to every socket
the visitor has open, and a page that reconnects asks for what it missed (`resume`).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from aiohttp import WSMsgType, web
from pydantic import BaseModel

from connectors.base import (
    Connector,
    ConnectorContext,
    Malformed,
    SendError,
    Unauthorized,
    WebhookRejected,
    fetch_media,
)
from connectors.webchat.files import FileShelf, check_type, kind_of, read_upload
from connectors.webchat.longpoll import answer_poll
from connectors.webchat.mailbox import Mailbox, message_frame
from connectors.webchat.protocol import (
    CLIENT_ID,
    USER_ID,
    BadFrame,
    Limiter,
    Ping,
    Resume,
    Say,
    context_line,
    new_visitor,
    parse_frame,
    sign_visitor,
    user_verified,
    visitor_of,
)
from connectors.webchat.settings import Site, WebchatSettings
from connectors.webchat.texts import language_of, texts_for
from vocab.models import Attachment, InboundMessage, OutboundFile, OutboundMessage, SendReceipt
from vocab.mrkdwn import mrkdwn_escape
from vocab.untrusted import HostRule

log = logging.getLogger(__name__)
MAX_FRAME = 64 * 1024
MAX_AVATAR = 256 * 1024
AVATAR_TYPES = {b"\x89PNG": "image/png", b"\xff\xd8\xff": "image/jpeg", b"GIF8": "image/gif",
                b"RIFF": "image/webp"}


@dataclass(frozen=True, slots=True)
class Visitor:
    site: Site
    key: str  # "v-<hex>" (anonymous) or "u-<user id>" (verified)
    name: str
    email: str
    verified: bool
    email_verified: bool = False  # the site vouched for the email too (`email_hash`)

    @property
    def address(self) -> str:
        return f"{self.site.id}:{self.key}"


def error_frame(code: str, client_id: str | None = None) -> dict[str, Any]:
    frame: dict[str, Any] = {"type": "error", "code": code}
    if client_id:
        frame["client_id"] = client_id
    return frame


class Refused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class WebchatConnector(Connector):
    name = "webchat"
    Settings = WebchatSettings

    def __init__(self, settings: BaseModel, ctx: ConnectorContext) -> None:
        super().__init__(settings, ctx)
        assert isinstance(settings, WebchatSettings)
        self.settings = settings
        self.mailbox = Mailbox(ctx.state, settings.history_size)
        self.shelf = FileShelf(ctx.state)
        self.connections = Limiter(settings.connections_per_minute)
        self.polls = Limiter(settings.connections_per_minute * 4)
        self.per_visitor = Limiter(settings.messages_per_minute)
        self.per_address = Limiter(settings.messages_per_minute_per_address)
        self.secret = b""
        self.script = b""
        self.script_gz = b""
        self.avatar_rule = HostRule.of(settings.avatar_hosts, settings.avatar_origins)

    # -- lifecycle ------------------------------------------------------------------------
    async def start(self) -> None:
        secret = await self.ctx.state.get("token_secret")
        if not secret:
            await self.ctx.state.set("token_secret", new_visitor() + new_visitor())
            secret = await self.ctx.state.get("token_secret") or ""
        self.secret = secret.encode()
        self.script = resources.files("connectors.webchat").joinpath(
            "static/widget.js").read_bytes()
        self.script_gz = gzip.compress(self.script, 9, mtime=0)

    async def shutdown(self) -> None:
        self.mailbox.wake()
        for ws in self.mailbox.all_sockets():
            await ws.close(code=1012, message=b"restarting")

    async def stop(self) -> None:
        await self.shutdown()

    # -- HTTP -----------------------------------------------------------------------------
    def routes(self) -> Sequence[web.RouteDef]:
        return [web.get("/widget.js", self.widget), web.post("/webchat/config", self.config),
                web.get("/webchat/ws", self.socket),
                web.get("/webchat/avatar/{key}", self.avatar),
                web.post("/webchat/poll", self.poll),
                web.post("/webchat/upload", self.upload),
                web.options("/webchat/upload", self.preflight),
                web.get("/webchat/file/{key}", self.file)]

    async def verify(self, request: web.Request, body: bytes) -> None:
        raise Unauthorized("the web chat has no webhook")

    def parse(self, body: bytes) -> list[InboundMessage]:
        return []

    async def widget(self, request: web.Request) -> web.StreamResponse:
        headers = {"Cache-Control": "public, max-age=300", "Timing-Allow-Origin": "*",
                   "X-Content-Type-Options": "nosniff", "Vary": "Accept-Encoding",
                   "Cross-Origin-Resource-Policy": "cross-origin"}
        if "gzip" in request.headers.get("Accept-Encoding", ""):
            headers["Content-Encoding"] = "gzip"
            body = self.script_gz
        else:
            body = self.script
        return web.Response(body=body, headers=headers,
                            content_type="application/javascript", charset="utf-8")

    def _site(self, request: web.Request) -> tuple[Site, str]:
        site = self.settings.site(request.query.get("site", ""))
        if site is None:
            raise Refused(404, "unknown site")
        origin = request.headers.get("Origin", "").lower()
        if origin not in site.allowed_origins:
            raise Refused(403, "this page's origin is not in the site's allowed_origins")
        return site, origin

    def _visitor(self, request: web.Request, site: Site) -> Visitor:
        q = request.query
        name, email = q.get("name", "")[:80].strip(), q.get("email", "")[:200].strip()
        user_id, user_hash = q.get("user_id", ""), q.get("user_hash", "")
        if user_id and not USER_ID.fullmatch(user_id):
            raise Refused(400, "user_id must be 1-128 printable characters")
        if user_id and user_verified(site.identity_secret, user_id, user_hash):
            # The hash covers the user id only: the email is the site's word only with a hash
            # of its own (else any signed-in user could claim another customer's address).
            email_ok = bool(email) and user_verified(site.identity_secret, email.lower(),
                                                     q.get("email_hash", ""))
            return Visitor(site, f"u-{user_id}", name or user_id, email, True, email_ok)
        if site.require_verification:
            raise Refused(403, "identity not verified: user_hash must be the HMAC-SHA256 of "
                               "user_id with the site's identity_secret")
        visitor = visitor_of(self.secret, site.id, q.get("token", "")) or new_visitor()
        return Visitor(site, visitor, name or "Web visitor", email, False)

    def _offline(self, site: Site) -> dict[str, float | None] | None:
        """None while the site's team is open; else when it opens again (ms, or None)."""
        is_open, next_open = self.ctx.hours(site.team)
        if is_open:
            return None
        return {"next_open": None if next_open is None else next_open * 1000}

    async def config(self, request: web.Request) -> web.StreamResponse:
        """What the widget shows before a socket opens; only for the site's own origins."""
        try:
            site, origin = self._site(request)
            cors = {"Access-Control-Allow-Origin": origin, "Vary": "Origin",
                    "Timing-Allow-Origin": origin}
            language = language_of(request.query.get("lang", "")[:35], site.languages)
            shown = {"title": site.title, "colors": site.colors.model_dump(),
                     "language": language, "texts": texts_for(language, site.texts),
                     "invitations": [i.model_dump() for i in site.invitations],
                     "offline": self._offline(site),
                     "require_verification": site.require_verification}
            try:
                self._visitor(request, site)
            except Refused as exc:  # the page may say why the chat is not available
                return web.json_response({"error": exc.reason, "config": shown},
                                         status=exc.status, headers=cors)
        except Refused as exc:
            return web.json_response({"error": exc.reason}, status=exc.status)
        return web.json_response(shown, headers={**cors, "Cache-Control": "no-store"})

    async def socket(self, request: web.Request) -> web.StreamResponse:
        peer = request.remote or "?"
        try:
            site, _ = self._site(request)
            if not self.connections.allow(peer):
                raise Refused(429, "too many connections from this address")
            visitor = self._visitor(request, site)
        except Refused as exc:
            return web.json_response({"error": exc.reason}, status=exc.status)
        ws = web.WebSocketResponse(heartbeat=self.settings.heartbeat_seconds,
                                   max_msg_size=MAX_FRAME)
        await ws.prepare(request)
        address = visitor.address
        self.mailbox.join(address, ws)
        try:
            token = sign_visitor(self.secret, site.id, visitor.key) if not visitor.verified \
                else ""
            await ws.send_json({"type": "welcome", "visitor_token": token,
                                "verified": visitor.verified})
            told = False  # this page's context goes with its first message
            async for frame in ws:
                if frame.type != WSMsgType.TEXT:
                    await self._error(ws, "text_frames_only")
                    continue
                try:
                    parsed = parse_frame(frame.data, self.settings.max_text_chars)
                except BadFrame as exc:
                    await self._error(ws, exc.code, exc.client_id)
                    continue
                if isinstance(parsed, Ping):
                    await ws.send_json({"type": "pong"})
                elif isinstance(parsed, Resume):
                    for item in await self.mailbox.after(address, parsed.after):
                        await ws.send_json(message_frame(item))
                elif isinstance(parsed, Say):
                    answer, ok = await self._say(peer, visitor, parsed, with_context=not told,
                                                 skip=ws)
                    await ws.send_json(answer)
                    if not ok:
                        await ws.close(code=1011, message=b"try again")
                        break
                    told = True
        except (ConnectionError, RuntimeError):
            pass  # the page went away mid-frame
        finally:
            self.mailbox.leave(address, ws)
        return ws

    async def poll(self, request: web.Request) -> web.StreamResponse:
        """The long-poll fallback (connectors/webchat/longpoll.py): the socket's checks."""
        peer = request.remote or "?"
        try:
            site, origin = self._site(request)
            if not self.polls.allow(peer):
                raise Refused(429, "too many requests from this address")
            visitor = self._visitor(request, site)
        except Refused as exc:
            return web.json_response({"error": exc.reason}, status=exc.status)
        welcome = None
        if not visitor.verified and visitor_of(self.secret, site.id,
                                               request.query.get("token", "")) is None:
            welcome = {"type": "welcome", "verified": False,
                       "visitor_token": sign_visitor(self.secret, site.id, visitor.key)}

        async def speak(say: Say, first: bool) -> tuple[dict[str, Any], bool]:
            return await self._say(peer, visitor, say, with_context=first)
        return await answer_poll(request, self.mailbox, visitor.address, welcome, speak,
                                 self.settings.max_text_chars, self.settings.poll_hold_seconds,
                                 {"Access-Control-Allow-Origin": origin, "Vary": "Origin"})

    async def _error(self, ws: web.WebSocketResponse, code: str,
                     client_id: str | None = None) -> None:
        await ws.send_json(error_frame(code, client_id))

    async def _say(self, peer: str, visitor: Visitor, say: Say, *, with_context: bool,
                   skip: web.WebSocketResponse | None = None) -> tuple[dict[str, Any], bool]:
        """Store one visitor message: the frame for the page (its ack, or an error) and False
        when the store failed (the page resends what was not acknowledged)."""
        address = visitor.address
        if not self.per_visitor.allow(address) or not self.per_address.allow(peer):
            return error_frame("rate_limited", say.client_id), True
        markup = None
        if with_context:
            line = context_line(say.page, "" if visitor.email_verified else visitor.email)
            if visitor.verified:
                line = " · ".join(x for x in (f"verified user {visitor.key[2:]}",
                                              visitor.email if visitor.email_verified else "",
                                              line) if x)
            if line:
                markup = f"{mrkdwn_escape(say.text)}\n\n_{mrkdwn_escape(line)}_"
        language = say.page.language.split("-")[0].lower() or None
        inbound = InboundMessage(
            connector=self.name, platform_message_id=f"{address}/{say.client_id}",
            address=address, sender_name=visitor.name, text=say.text,
            platform_time=self.ctx.clock(), markup=markup, inbox=visitor.site.id,
            language=language,
            verified_email=visitor.email if visitor.email_verified else None,
            reply_email=say.page.email or None,
            invitation=say.page.invitation or None)
        try:
            results = await self.ctx.ingest([inbound])
        except Exception as exc:
            log.warning("webchat: storing a message failed (%s); the page will resend it",
                        type(exc).__name__)
            return error_frame("retry", say.client_id), False
        message_id = results[0].message_id if results else None
        if message_id is None:
            return error_frame("not_stored", say.client_id), True
        item = {"id": int(message_id), "from": "visitor", "client_id": say.client_id,
                "text": say.text, "sent_at": self.ctx.clock()}
        await self.mailbox.add(address, item)
        await self.mailbox.push(address, message_frame(item), skip=skip)
        return {"type": "ack", "client_id": say.client_id, "id": int(message_id)}, True

    # -- agents' replies ------------------------------------------------------------------
    async def _agent_item(self, msg: OutboundMessage, text: str) -> dict[str, Any]:
        """An agent's message as the page shows it; SendError for an address of no site."""
        site_id, _, key = msg.address.partition(":")
        if self.settings.site(site_id) is None or not key:
            raise SendError(f"{msg.address!r} is not a web chat visitor of a configured site",
                            code="unknown_site", retryable=False)
        return {"id": int(msg.message_id), "from": "agent",
                "author": {"name": msg.author_name, "avatar": await self._avatar(msg)},
                "text": text, "sent_at": self.ctx.clock()}

    async def send(self, msg: OutboundMessage) -> SendReceipt:
        text = msg.text
        if msg.choices is not None and msg.choices.fallback:
            text = f"{text}\n\n{msg.choices.fallback}"
        item = await self._agent_item(msg, text)
        await self.mailbox.add(msg.address, item)
        await self.mailbox.push(msg.address, message_frame(item))
        return SendReceipt(platform_message_ids=(f"webchat-{msg.message_id}",))

    # -- agents' pictures, served by the bridge ---------------------------------------------
    async def _avatar(self, msg: OutboundMessage) -> str:
        """The bridge's URL of the author's picture ("" when there is none or it cannot be
        fetched: the page shows an initial instead).  Fetched once, kept in the state."""
        url = msg.author_avatar
        if not url:
            return ""
        key = hashlib.sha256(url.encode()).hexdigest()[:32]
        link = f"{self.ctx.public_url}/webchat/avatar/{key}"
        if await self.ctx.state.get(f"avatar:{key}"):
            return link
        try:
            data = await fetch_media(self.ctx.session, url, self.avatar_rule, MAX_AVATAR,
                                     "the agent's picture")
        except SendError as exc:
            log.info("webchat: no avatar for %s: %s", msg.author_name, exc.code)
            return ""
        kind = next((t for magic, t in AVATAR_TYPES.items() if data.startswith(magic)), None)
        if kind is None:
            return ""
        await self.ctx.state.set(f"avatar:{key}", json.dumps(
            {"type": kind, "data": base64.b64encode(data).decode()}))
        return link

    async def avatar(self, request: web.Request) -> web.StreamResponse:
        key = request.match_info["key"]
        raw = await self.ctx.state.get(f"avatar:{key}") if len(key) == 32 else None
        if not raw:
            return web.json_response({"error": "unknown picture"}, status=404)
        found = json.loads(raw)
        return web.Response(body=base64.b64decode(found["data"]), content_type=found["type"],
                            headers={"Cache-Control": "public, max-age=86400",
                                     "X-Content-Type-Options": "nosniff",
                                     "Cross-Origin-Resource-Policy": "cross-origin"})

    # -- files ----------------------------------------------------------------------------
    async def upload(self, request: web.Request) -> web.StreamResponse:
        """A visitor's file: `?site=&token=` (or the verified identity) `&client_id=&name=`,
        the raw bytes as the body with their Content-Type; 200 `{"id"}` once stored."""
        peer = request.remote or "?"
        try:
            site, origin = self._site(request)
            cors = {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
            visitor = self._visitor(request, site)
        except Refused as exc:
            return web.json_response({"error": exc.reason}, status=exc.status)
        try:
            if not visitor.verified and visitor_of(self.secret, site.id,
                                                   request.query.get("token", "")) is None:
                raise Unauthorized("a file needs the visitor's token")
            client_id = request.query.get("client_id", "")
            if not CLIENT_ID.fullmatch(client_id):
                raise Malformed("client_id must be 1-64 of A-Z a-z 0-9 _ -")
            if not self.per_visitor.allow(visitor.address) or not self.per_address.allow(peer):
                raise WebhookRejected(429, "too many messages")
            name = (request.query.get("name", "") or "file")[:120].replace("/", "_")
            mime = request.content_type
            data = await read_upload(request, self.settings.max_file_bytes)
            if not data:
                raise Malformed("the file is empty")
            check_type(mime, data, self.settings.file_types)
        except WebhookRejected as exc:
            return web.json_response({"error": exc.reason}, status=exc.status, headers=cors)
        key = await self.shelf.put(name, mime, data)
        inbound = InboundMessage(
            connector=self.name, platform_message_id=f"{visitor.address}/{client_id}",
            address=visitor.address, sender_name=visitor.name, text="",
            attachments=(Attachment(kind=kind_of(mime), platform_file_id=key, filename=name,
                                    mime_type=mime, size=len(data)),),
            platform_time=self.ctx.clock(), inbox=site.id)
        results = await self.ctx.ingest([inbound])
        message_id = results[0].message_id if results else None
        if message_id is None:
            return web.json_response({"error": "not stored"}, status=400, headers=cors)
        item = {"id": int(message_id), "from": "visitor", "client_id": client_id, "text": "",
                "sent_at": self.ctx.clock()}
        shown = {"name": name, "type": mime, "size": len(data),
                 "url": f"{self.ctx.public_url}/webchat/file/{key}"}
        item = await self.mailbox.add_file(visitor.address, item, shown)
        await self.mailbox.push(visitor.address, message_frame(item))
        return web.json_response({"id": int(message_id)}, headers=cors)

    async def preflight(self, request: web.Request) -> web.StreamResponse:
        """CORS for the upload (its Content-Type is the file's): the site's origins only."""
        try:
            _, origin = self._site(request)
        except Refused as exc:
            return web.json_response({"error": exc.reason}, status=exc.status)
        return web.Response(status=204, headers={
            "Access-Control-Allow-Origin": origin, "Vary": "Origin",
            "Access-Control-Allow-Methods": "POST",
            "Access-Control-Allow-Headers": "Content-Type", "Access-Control-Max-Age": "600"})

    async def fetch_file(self, attachment: Attachment, max_bytes: int) -> bytes:
        found = await self.shelf.get(attachment.platform_file_id or "")
        if found is None:
            raise SendError("the visitor's file is no longer kept", code="gone",
                            retryable=False)
        if len(found[2]) > max_bytes:
            raise SendError("the file is too large", code="too_large", retryable=False)
        return found[2]

    async def send_file(self, msg: OutboundMessage, file: OutboundFile) -> SendReceipt:
        item = await self._agent_item(msg, "")
        shelf_key = await self.shelf.put(file.filename, file.mime_type, file.data)
        shown = {"name": file.filename, "type": file.mime_type, "size": len(file.data),
                 "url": f"{self.ctx.public_url}/webchat/file/{shelf_key}"}
        item = await self.mailbox.add_file(msg.address, item, shown)
        await self.mailbox.push(msg.address, message_frame(item))
        return SendReceipt(platform_message_ids=(f"webchat-{msg.message_id}-file",))

    async def file(self, request: web.Request) -> web.StreamResponse:
        found = await self.shelf.get(request.match_info["key"])
        if found is None:
            return web.json_response({"error": "unknown file"}, status=404)
        name, mime, data = found
        inline = mime.startswith("image/") and mime != "image/svg+xml"
        safe = name.replace('"', "").encode("ascii", "replace").decode()
        return web.Response(body=data, content_type=mime, headers={
            "Content-Disposition": f'{"inline" if inline else "attachment"}; filename="{safe}"',
            "Cache-Control": "private, max-age=86400", "X-Content-Type-Options": "nosniff",
            "Cross-Origin-Resource-Policy": "cross-origin",
            "Content-Security-Policy": "default-src 'none'; sandbox"})
