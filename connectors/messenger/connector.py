"""Facebook Messenger customer connector: Graph API webhooks in, the Send API out.

Meta ships no Python SDK: every call goes over the bridge's shared aiohttp session.  Customers'
names, persona ids and the mids we sent (for delivery and read watermarks) are kept in the
connector's own state (`ctx.state`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Sequence
from typing import Any, ClassVar
from urllib.parse import quote

import aiohttp
from aiohttp import web
from pydantic import BaseModel

from connectors.base import (
    Connector,
    ConnectorContext,
    OutsideWindow,
    SendError,
    WebhookRejected,
    fetch_media,
)
from connectors.messenger.parse import (
    METADATA,
    NAME,
    Parsed,
    Watermark,
    clean,
    load,
    parse_body,
    split_address,
)
from connectors.messenger.settings import MessengerSettings, Page
from connectors.meta import signature
from connectors.meta.graph import META_CDN_HOSTS, GraphClient, GraphError
from vocab.models import (
    Attachment,
    InboundMessage,
    OutboundFile,
    OutboundMessage,
    SendReceipt,
)
from vocab.split import split_plain
from vocab.untrusted import HostRule

log = logging.getLogger(__name__)
TEXT_LIMIT = 2000
HOUR = 3600.0
WINDOW = 24 * HOUR  # RESPONSE: anything, within 24 hours of the customer's last message
HUMAN_AGENT_WINDOW = 7 * 24 * HOUR  # the HUMAN_AGENT tag: human replies, up to 7 days
SENT_KEPT = 50  # our latest mids per conversation, for the watermarks
NAME_RETRY = 600.0  # seconds before a failed name lookup (or persona) is tried again
PERSONA_NAME_MAX = 50  # Meta's limit on a persona's name
APP_ID_KEY = "app_id"  # learnt from an echo of our own send when `app_id` is not configured


def _ago(seconds: float) -> str:
    hours = seconds / HOUR
    return f"{hours:.0f} hours" if hours < 48 else f"{hours / 24:.0f} days"


def send_error(error: GraphError, page_id: str, throttle: float) -> SendError:
    """Meta's error -> a clear reason and the right retry decision (the token is already
    blanked from the text by the Graph client)."""
    code, sub, text, label = error.code, error.subcode, error.message, error.label
    if sub == 2018278 or (code == 10 and "window" in text.lower()):
        return OutsideWindow("Messenger refused it as outside the allowed window (the customer "
                             "last wrote too long ago); resend it once they write again")
    if code in (4, 613, 32, 80006) or error.status == 429:
        return SendError(f"Messenger is throttling page {page_id}: {text}", code=label,
                         retryable=True, retry_after=throttle, gate=f"{NAME}:{page_id}")
    if code == 551:
        return SendError("the customer is not available on Messenger right now (blocked the "
                         "page or deactivated the account)", code=label, retryable=False)
    if code == 190:
        return SendError(f"the page access token of page {page_id} expired or is invalid: "
                         "generate a new one and update [[connectors.messenger.pages]]",
                         code=label, retryable=False)
    if error.status >= 500 or code in (1, 2) or error.transient:
        return SendError(f"Messenger error: {text}", code=label, retryable=True)
    return SendError(f"Messenger refused the message: {text}", code=label, retryable=False)


class MessengerConnector(Connector):
    name: ClassVar[str] = NAME
    Settings: ClassVar[type[BaseModel]] = MessengerSettings
    fetches_media_by_url: ClassVar[bool] = True  # Meta fetches attachments from a URL

    def __init__(self, settings: BaseModel, ctx: ConnectorContext) -> None:
        super().__init__(settings, ctx)
        assert isinstance(settings, MessengerSettings)
        self.settings = settings
        self._media_hosts = HostRule.of(META_CDN_HOSTS, [settings.graph_base_url])
        self._client = GraphClient(ctx.session, settings.graph_base_url,
                                   settings.graph_api_version, settings.request_timeout,
                                   "Messenger", token_label="[page access token]")
        self._name_failed: dict[str, float] = {}  # state key -> monotonic time of the failure
        self._app_id = settings.app_id  # or, once learnt, the app id of our own echoes
        self._persona_locks: dict[str, asyncio.Lock] = {}
        self._persona_failed: dict[str, float] = {}  # page:agent -> monotonic time of a refusal
        self._name_locks: dict[str, asyncio.Lock] = {}

    async def start(self) -> None:
        pass  # webhooks are subscribed in Meta's App Dashboard (see the README)

    async def stop(self) -> None:
        pass

    # -- continuity ---------------------------------------------------------------------------
    def handoff_invite(self, channel: str, code: str) -> str | None:
        """An m.me link to the first configured Page carrying the code as its `ref`; Meta
        hands it back in a referral (an open thread) or a Get Started postback (a new one)."""
        if channel != self.name:
            return None
        link = f"{self.settings.pages[0].m_me}?ref={quote(code, safe='')}"
        return f"To continue on Messenger, open {link}"

    # -- inbound -----------------------------------------------------------------------------
    def routes(self) -> Sequence[web.RouteDef]:
        return [web.get(self.webhook_path, self.handle_handshake),
                web.post(self.webhook_path, self.handle_webhook)]

    async def handle_handshake(self, request: web.Request) -> web.StreamResponse:
        return signature.handshake(request, self.settings.verify_token)

    content_types = ("application/json",)

    def precheck(self, request: web.Request) -> None:
        signature.precheck(request)

    async def verify(self, request: web.Request, body: bytes) -> None:
        signature.verify(request, body, self.settings.app_secret)

    def parse(self, body: bytes) -> list[InboundMessage]:
        return parse_body(load(body), self.settings.app_id).messages

    async def handle_webhook(self, request: web.Request) -> web.StreamResponse:
        """The base handler's order (413, 401, 400), plus what Messenger needs before the
        200: customers' names, then one commit for every message of the body, then the
        delivery and read watermarks."""
        try:
            body = await self.read_verified(request)
            data = self.parsed(lambda: load(body))
            if not self._app_id:
                self._app_id = await self.ctx.state.get(APP_ID_KEY) or ""
            parsed = self.parsed(lambda: parse_body(data, self._app_id))
        except WebhookRejected as exc:
            return self.rejected(exc, request)
        messages = await self._without_our_echoes(parsed)
        if messages:
            await self.ctx.ingest(await self._named(messages))  # raises -> 500
        for mark in parsed.watermarks:
            await self._watermark(mark)
        return self.acknowledge()

    async def _without_our_echoes(self, parsed: Parsed) -> list[InboundMessage]:
        """Echoes the parser could not tell from Page Inbox replies (no `app_id` configured,
        no `metadata` repeated) are ours when we sent their mid: dropped, and their app id is
        remembered as ours for the next ones."""
        if not parsed.echo_apps:
            return parsed.messages
        kept: list[InboundMessage] = []
        sent: dict[str, set[str]] = {}
        for item in parsed.messages:
            if item.echo_author is not None:
                if item.address not in sent:
                    page_id, psid = split_address(item.address)
                    raw = await self.ctx.state.get(f"sent:{page_id}:{psid}")
                    sent[item.address] = {str(mid) for mid, _ in json.loads(raw or "[]")}
                if item.platform_message_id in sent[item.address]:
                    app = parsed.echo_apps.get(item.platform_message_id)
                    if app and not self._app_id:
                        await self.ctx.state.set(APP_ID_KEY, app)
                        self._app_id = app
                    continue
            kept.append(item)
        return kept

    async def _named(self, items: list[InboundMessage]) -> list[InboundMessage]:
        """Customers' names from the Graph API, looked up at once and concurrently, bounded
        by `profile_timeout`; a failed lookup keeps the neutral name and is retried later."""
        people = list(dict.fromkeys(item.address for item in items))
        found = await asyncio.gather(*(self._name(a) for a in people))
        names = dict(zip(people, found, strict=True))
        return [item.model_copy(update={"sender_name": names[item.address]})
                if names[item.address] else item for item in items]

    async def _name(self, address: str) -> str | None:
        """One lookup per customer: concurrent webhooks from a new customer wait for it."""
        key = f"name:{address}"
        cached = await self.ctx.state.get(key)
        if cached is not None:
            return cached
        if len(self._name_locks) > 10_000:
            self._name_locks = {k: v for k, v in self._name_locks.items() if v.locked()}
        async with self._name_locks.setdefault(key, asyncio.Lock()):
            return await self._look_up(key, address)

    async def _look_up(self, key: str, address: str) -> str | None:
        cached = await self.ctx.state.get(key)
        if cached is not None:
            return cached
        failed = self._name_failed.get(key)
        page = self.settings.page(split_address(address)[0])
        if page is None or (failed is not None and time.monotonic() - failed < NAME_RETRY):
            return None
        try:
            async with asyncio.timeout(self.settings.profile_timeout):
                data = await self._graph("GET", split_address(address)[1], page,
                                         params={"fields": "first_name,last_name"})
        except (SendError, TimeoutError) as exc:
            log.info("messenger name lookup failed: %s", exc)
            if len(self._name_failed) > 10_000:
                self._name_failed.clear()  # only a brake on retries
            self._name_failed[key] = time.monotonic()
            return None
        name = clean(" ".join(str(data.get(k) or "").strip()
                              for k in ("first_name", "last_name")).strip())[:200]
        if not name:
            self._name_failed[key] = time.monotonic()
            return None
        await self.ctx.state.set(key, name)
        return name

    async def _watermark(self, mark: Watermark) -> None:
        """Apply a delivery or read watermark to each of our sends it covers (once)."""
        sent = json.loads(await self.ctx.state.get(f"sent:{mark.page_id}:{mark.psid}") or "[]")
        done_key = f"{mark.state.value}:{mark.page_id}:{mark.psid}"
        done = float(await self.ctx.state.get(done_key) or 0)
        mids = set(mark.mids) | {str(mid) for mid, at in sent if done < at <= mark.watermark}
        for mid in sorted(mids):
            await self.ctx.receipt(NAME, mid, mark.state, None)
        if mark.watermark > done:
            await self.ctx.state.set(done_key, repr(mark.watermark))

    # -- outbound ----------------------------------------------------------------------------
    async def _graph(self, method: str, path: str, page: Page, *,
                     params: dict[str, str] | None = None,
                     body: dict[str, Any] | None = None) -> dict[str, Any]:
        def errors(error: GraphError) -> SendError:
            return send_error(error, page.id, self.settings.throttle_retry_after)
        # `?access_token=`, as Meta's Send API documents it; never echoed into errors or logs.
        return await self._client.call(method, path, page.access_token, errors, params=params,
                                       json=body, token_in_query=True)

    def _page(self, address: str) -> tuple[Page, str]:
        page_id, psid = split_address(address)
        page = self.settings.page(page_id)
        if page is None or not psid:
            raise SendError(f"page {page_id} is not configured in [[connectors.messenger.pages]]",
                            code="config", retryable=False)
        return page, psid

    def _policy(self, msg: OutboundMessage, page: Page) -> dict[str, str]:
        """RESPONSE within 24 hours of the customer's last message; then, up to 7 days, the
        HUMAN_AGENT tag for a person's reply if the page may use it; else nothing goes out."""
        if msg.last_inbound_at is None:
            return {"messaging_type": "RESPONSE"}  # unknown: Meta decides (code 10 if late)
        age = self.ctx.clock() - msg.last_inbound_at
        if age <= WINDOW:
            return {"messaging_type": "RESPONSE"}
        if age <= HUMAN_AGENT_WINDOW and not msg.automatic and self.settings.tag_allowed(page):
            return {"messaging_type": "MESSAGE_TAG", "tag": "HUMAN_AGENT"}
        if age > HUMAN_AGENT_WINDOW:
            raise OutsideWindow(
                f"the customer last wrote {_ago(age)} ago, past Messenger's 24-hour window and "
                "the 7 days of the HUMAN_AGENT tag; resend it once they write again")
        if msg.automatic:
            still = ("a person's reply can still go out (HUMAN_AGENT tag) until 7 days after "
                     "their last message" if self.settings.tag_allowed(page)
                     else "resend it once they write again")
            raise OutsideWindow(
                f"the customer last wrote {_ago(age)} ago, past Messenger's 24-hour window, and "
                f"an automatic message may not use the HUMAN_AGENT tag; {still}")
        raise OutsideWindow(
            f"the customer last wrote {_ago(age)} ago, past Messenger's 24-hour window, and "
            f"the HUMAN_AGENT tag is not enabled for page {page.id}; resend it once they "
            "write again (or enable human_agent_tag, which needs Meta's Human Agent permission)")

    async def _persona(self, page: Page, agent: str) -> str:
        """The agent's persona on this page, created once: replies in other conversations
        that need it meanwhile wait for the one creation (one lock per page and agent)."""
        key = f"persona:{page.id}:{agent}"
        cached = await self.ctx.state.get(key)
        if cached:
            return cached
        if len(self._persona_locks) > 10_000:
            self._persona_locks = {k: v for k, v in self._persona_locks.items() if v.locked()}
        async with self._persona_locks.setdefault(key, asyncio.Lock()):
            cached = await self.ctx.state.get(key)
            if cached:
                return cached
            body = {"name": agent[:PERSONA_NAME_MAX]}
            if self.settings.persona_picture_url:
                body["profile_picture_url"] = self.settings.persona_picture_url
            data = await self._graph("POST", f"{page.id}/personas", page, body=body)
            persona = str(data.get("id") or "")
            if not persona:
                raise SendError("Meta created no persona id", code="persona", retryable=True)
            await self.ctx.state.set(key, persona)
            return persona

    async def _identity(self, msg: OutboundMessage, page: Page) -> tuple[str | None, str | None]:
        """The persona to send as, or None (the agent's name then leads the text), and a note
        for the thread when personas are on but one could not be made."""
        if not self.settings.personas or not msg.author_name:
            return None, None
        key = f"{page.id}:{msg.author_name}"
        refused = self._persona_failed.get(key)
        if refused is not None and time.monotonic() - refused < NAME_RETRY:
            return None, None  # Meta refused it a moment ago: the thread was told then
        try:
            return await self._persona(page, msg.author_name), None
        except SendError as exc:
            if exc.retryable:
                raise
            if len(self._persona_failed) > 10_000:
                self._persona_failed.clear()  # only a brake on retries
            self._persona_failed[key] = time.monotonic()
            return None, (f"sent without a persona ({exc.describe()}): the name leads the text "
                          f"(a persona is tried again in {NAME_RETRY / 60:.0f} minutes)")

    async def _post(self, page: Page, psid: str, policy: dict[str, str],
                    message: dict[str, Any], persona: str | None) -> str:
        body: dict[str, Any] = {"recipient": {"id": psid}, **policy,
                                "message": {**message, "metadata": METADATA}}
        if persona:
            body["persona_id"] = persona
        data = await self._graph("POST", "me/messages", page, body=body)
        return str(data.get("message_id") or "")

    async def _remember(self, page: Page, psid: str, mids: Sequence[str], at: float) -> None:
        key = f"sent:{page.id}:{psid}"
        sent = json.loads(await self.ctx.state.get(key) or "[]")
        sent.extend([mid, at] for mid in mids if mid)
        await self.ctx.state.set(key, json.dumps(sent[-SENT_KEPT:]))

    async def send(self, msg: OutboundMessage) -> SendReceipt:
        page, psid = self._page(msg.address)
        policy = self._policy(msg, page)  # before any HTTP call
        persona, note = await self._identity(msg, page)
        text = msg.text if persona or not msg.author_name else f"{msg.author_name}: {msg.text}"
        at = self.ctx.clock()  # before the send: Meta's watermarks come after it
        parts = split_plain(text, TEXT_LIMIT)
        mids = [await self._post(page, psid, policy, {"text": part, **(
            quick_replies(msg) if n == len(parts) - 1 else {})}, persona)
                for n, part in enumerate(parts)]
        await self._remember(page, psid, mids, at)
        return SendReceipt(platform_message_ids=tuple(mids), note=note)

    renders_choices: ClassVar[bool] = True

    async def send_file(self, msg: OutboundMessage, file: OutboundFile) -> SendReceipt:
        """Meta fetches the file from the bridge's GET /media/<token> URL."""
        assert file.url is not None, "media_by_url connectors get a public URL"
        page, psid = self._page(msg.address)
        policy = self._policy(msg, page)
        persona, note = await self._identity(msg, page)
        major = file.mime_type.split("/", 1)[0]
        kind = "image" if file.is_image else major if major in ("video", "audio") else "file"
        at = self.ctx.clock()
        mid = await self._post(page, psid, policy, {"attachment": {
            "type": kind, "payload": {"url": file.url, "is_reusable": False}}}, persona)
        await self._remember(page, psid, [mid], at)
        return SendReceipt(platform_message_ids=(mid,), note=note)

    async def fetch_file(self, attachment: Attachment, max_bytes: int) -> bytes:
        """A customer's file from Meta's CDN.  Its links expire, so the core's Slack-file row
        (queued with the message, in the same commit) fetches it right after the webhook.
        Only Meta's CDN hosts (or the configured Graph API's origin) are fetched."""
        url = attachment.url or ""
        if not url.startswith(("https://", "http://")):
            raise SendError("the attachment has no download URL", code="no_url",
                            retryable=False)
        timeout = aiohttp.ClientTimeout(total=self.settings.request_timeout * 3)
        try:
            return await fetch_media(self.ctx.session, url, self._media_hosts, max_bytes,
                                     "Messenger attachment download", client_timeout=timeout)
        except SendError as exc:
            if exc.code in ("http_403", "http_404", "http_410"):
                raise SendError(
                    f"Meta's link to it no longer works (HTTP {exc.code[5:]}: "
                    "its CDN links expire); ask the customer to send it again", code="expired",
                    retryable=False) from exc
            raise


def quick_replies(msg: OutboundMessage) -> dict[str, Any]:
    """Choices as quick replies (at most 13; titles cut to Meta's 20 characters)."""
    if msg.choices is None:
        return {}
    return {"quick_replies": [{"content_type": "text", "title": c.title[:20], "payload": c.id}
                              for c in msg.choices.items[:13]]}
