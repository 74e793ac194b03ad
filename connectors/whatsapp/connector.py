"""WhatsApp through Meta's Cloud API: signed Graph webhooks in, `/{phone_number_id}/messages`
out, files through the media endpoints, approved templates outside the 24-hour window.

Meta ships no Python SDK: every call goes over the bridge's shared aiohttp session through
the Graph client shared with Messenger (`connectors.meta`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
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
    Unsupported,
    WebhookRejected,
    fetch_media,
    too_large,
)
from connectors.meta import signature
from connectors.meta.graph import META_CDN_HOSTS, ErrorMapper, GraphClient, GraphError
from connectors.whatsapp.outbound import (
    TEXT_LIMIT,
    WINDOW,
    file_message,
    interactive,
    media_kind,
    template_components,
)
from connectors.whatsapp.parse import (
    NAME,
    WINDOW_CLOSED,
    Parsed,
    load,
    parse_body,
    split_address,
    template_names,
)
from connectors.whatsapp.settings import PhoneNumber, WhatsAppSettings
from vocab.models import (
    Attachment,
    InboundMessage,
    OutboundFile,
    OutboundMessage,
    SendReceipt,
)
from vocab.mrkdwn import mrkdwn_to_whatsapp
from vocab.split import split_plain
from vocab.untrusted import HostRule, origin

log = logging.getLogger(__name__)
THROTTLED = (130429, 131056, 4, 80007)  # throughput, pair rate, app and account rate limits
PERMANENT_TOKEN = "generate a System User's permanent token and update access_token in " \
                  "[connectors.whatsapp]"
MARKS_PENDING = 1000  # read receipts waiting to go out; more are skipped, never queued


class WhatsAppConnector(Connector):
    name: ClassVar[str] = NAME
    Settings: ClassVar[type[BaseModel]] = WhatsAppSettings
    content_types = ("application/json",)
    renders_choices: ClassVar[bool] = True  # reply buttons, or a list past 3 choices

    def __init__(self, settings: BaseModel, ctx: ConnectorContext) -> None:
        super().__init__(settings, ctx)
        assert isinstance(settings, WhatsAppSettings)
        self.settings = settings
        self._client = GraphClient(ctx.session, settings.graph_base_url,
                                   settings.graph_api_version, settings.request_timeout,
                                   "WhatsApp")
        graph = origin(settings.graph_base_url) or ""
        self._media_hosts = HostRule.of(META_CDN_HOSTS, [settings.graph_base_url],
                                        ["lookaside.fbsbx.com", graph])
        self._templates: list[tuple[str, str, int]] = []
        self._templates_at: float | None = None  # when the list was last fetched (ctx.clock)
        self._refresh: asyncio.Task[None] | None = None
        self._marks: set[asyncio.Task[None]] = set()
        self._to_mark: dict[str, str] = {}  # address -> the latest wamid to mark read
        self._token_dead = False  # said once in the log, not once per message

    async def start(self) -> None:
        await self._load_templates()  # webhooks are subscribed in Meta's App Dashboard

    async def stop(self) -> None:
        tasks = [*self._marks, *([self._refresh] if self._refresh else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- continuity ---------------------------------------------------------------------------
    def handoff_invite(self, channel: str, code: str) -> str | None:
        """A wa.me link to the first number, the code as the message's prefilled text."""
        if channel != self.name:
            return None
        link = f"{self.settings.phone_numbers[0].wa_me}?text={quote(code, safe='')}"
        return f"To continue on WhatsApp, open {link} and send the message"

    # -- inbound -------------------------------------------------------------------------------
    def routes(self) -> Sequence[web.RouteDef]:
        return [web.get(self.webhook_path, self.handle_handshake),
                web.post(self.webhook_path, self.handle_webhook)]

    async def handle_handshake(self, request: web.Request) -> web.StreamResponse:
        return signature.handshake(request, self.settings.verify_token)

    def precheck(self, request: web.Request) -> None:
        signature.precheck(request)

    async def verify(self, request: web.Request, body: bytes) -> None:
        signature.verify(request, body, self.settings.app_secret)

    def parse(self, body: bytes) -> list[InboundMessage]:
        return parse_body(load(body)).messages

    async def handle_webhook(self, request: web.Request) -> web.StreamResponse:
        """Signature, then parse, then one commit for every message of the body (deduped on
        the wamid by the store), then each status as a receipt; 200 only after all of it."""
        try:
            body = await self.read_verified(request)
            parsed: Parsed = self.parsed(lambda: parse_body(load(body)))
        except WebhookRejected as exc:
            return self.rejected(exc, request)
        if parsed.messages:
            results = await self.ctx.ingest(parsed.messages)  # raises -> 500, Meta retries
            if self.settings.read_receipts:
                for item, result in zip(parsed.messages, results, strict=False):
                    if not result.duplicate:
                        self._mark_read(item)
        for status in parsed.statuses:
            templates: Sequence[str] = ()
            if status.code == WINDOW_CLOSED:
                templates = self.templates(f"{status.phone_number_id}:{status.recipient}")
            await self.ctx.receipt(NAME, status.wamid, status.state, status.error, templates)
        return self.acknowledge()

    def _mark_read(self, item: InboundMessage) -> None:
        """Blue ticks for the customer once their message is stored, off the webhook's path.
        Marking one message read marks the earlier ones too, so a customer's burst costs one
        call in flight and one for the latest message, not one per message."""
        address, first = item.address, item.address not in self._to_mark
        if first and len(self._marks) >= MARKS_PENDING:
            return
        self._to_mark[address] = item.platform_message_id
        if first:
            task = asyncio.create_task(self._reads(address))
            self._marks.add(task)
            task.add_done_callback(self._marks.discard)

    async def _reads(self, address: str) -> None:
        try:
            while (wamid := self._to_mark.get(address)) is not None:
                try:
                    number, _ = self._number(address)
                    await self._post(number, address, {"status": "read", "message_id": wamid})
                except SendError as exc:
                    log.info("whatsapp read receipt not sent: %s", exc.describe())
                if self._to_mark.get(address) == wamid:
                    del self._to_mark[address]
        finally:
            self._to_mark.pop(address, None)

    # -- Graph calls ---------------------------------------------------------------------------
    def _errors(self, address: str, number: PhoneNumber) -> ErrorMapper:
        def errors(error: GraphError) -> SendError:
            return self._send_error(error, address, number)
        return errors

    def _send_error(self, error: GraphError, address: str, number: PhoneNumber) -> SendError:
        """Meta's code -> what the outbox does: wait on the lane (no attempt used), show the
        window notice, give up with Meta's title, or retry."""
        code, label, title = error.code, error.label, error.title
        if code == WINDOW_CLOSED:
            return OutsideWindow("WhatsApp's 24-hour window is closed (error 131047): only an "
                                 "approved template can reach the customer until they write "
                                 "again")
        if code == 131056:  # pair rate limit: this customer only
            return SendError(f"WhatsApp is pacing messages to this customer: {title}",
                             code=label, retryable=True,
                             retry_after=self.settings.throttle_retry_after,
                             gate=f"{NAME}:{address}")
        if code in THROTTLED or error.status == 429:
            return SendError(f"WhatsApp is throttling number {number.number}: {title}",
                             code=label, retryable=True,
                             retry_after=self.settings.throttle_retry_after,
                             gate=f"{NAME}:{number.phone_number_id}")
        if code == 190 or error.status == 401:
            if not self._token_dead:
                self._token_dead = True
                log.error("whatsapp access token expired or invalid: %s", PERMANENT_TOKEN)
            return SendError(f"the WhatsApp access token expired or is invalid: "
                             f"{PERMANENT_TOKEN}", code=label, retryable=False)
        if error.status >= 500 or code in (1, 2, 131000) or error.transient:
            return SendError(f"WhatsApp error: {title}", code=label, retryable=True)
        if code == 131026:
            return SendError(f"WhatsApp could not deliver it (the number may not be on "
                             f"WhatsApp, or has not accepted the terms): {title}",
                             code=label, retryable=False)
        return SendError(f"WhatsApp refused it: {title}", code=label, retryable=False)

    async def _call(self, method: str, path: str, errors: ErrorMapper,
                    **kwargs: Any) -> dict[str, Any]:
        data = await self._client.call(method, path, self.settings.access_token, errors,
                                       **kwargs)
        self._token_dead = False
        return data

    async def _post(self, number: PhoneNumber, address: str,
                    body: Mapping[str, Any]) -> str:
        _, wa_id = split_address(address)
        payload = {"messaging_product": "whatsapp", **body}
        if "status" not in body:
            payload = {**payload, "recipient_type": "individual", "to": wa_id}
        data = await self._call("POST", f"{number.phone_number_id}/messages",
                                self._errors(address, number), json=payload)
        found = data.get("messages")
        first = found[0] if isinstance(found, list) and found else {}
        return str(first.get("id") or "") if isinstance(first, dict) else ""

    def _number(self, address: str) -> tuple[PhoneNumber, str]:
        phone_number_id, wa_id = split_address(address)
        number = self.settings.number(phone_number_id)
        if number is None or not wa_id:
            raise SendError(f"phone number id {phone_number_id} is not configured in "
                            "[[connectors.whatsapp.phone_numbers]]", code="config",
                            retryable=False)
        return number, wa_id

    def _check_window(self, msg: OutboundMessage) -> None:
        last = msg.last_inbound_at
        if last is not None and self.ctx.clock() - last < WINDOW:
            return
        since = ("the customer has not written yet" if last is None else
                 "the customer last wrote " + time.strftime("%Y-%m-%d %H:%M UTC",
                                                            time.gmtime(last)))
        raise OutsideWindow(f"WhatsApp's 24-hour window is closed ({since}): only an approved "
                            "template can reach them until they write again")

    # -- outbound ------------------------------------------------------------------------------
    def _text(self, msg: OutboundMessage) -> str:
        text = mrkdwn_to_whatsapp(msg.mrkdwn, msg.mentions) if msg.mrkdwn else msg.text
        return f"*{msg.author_name}*: {text}" if msg.author_name and not msg.automatic else text

    async def send(self, msg: OutboundMessage) -> SendReceipt:
        number, _ = self._number(msg.address)
        self._check_window(msg)
        parts = split_plain(self._text(msg), TEXT_LIMIT)
        last: dict[str, Any] | None = None
        if msg.choices is not None and msg.choices.items:
            head, body = interactive(parts, msg.choices)
            parts, last = head, body
        ids = [await self._post(number, msg.address, {
            "type": "text", "text": {"body": part, "preview_url": "http" in part}})
            for part in parts]
        if last is not None:
            ids.append(await self._post(number, msg.address, last))
        return SendReceipt(platform_message_ids=tuple(ids))

    async def send_file(self, msg: OutboundMessage, file: OutboundFile) -> SendReceipt:
        """Uploaded through `/{phone_number_id}/media`, then sent by its media id."""
        number, _ = self._number(msg.address)
        self._check_window(msg)
        kind, limit = media_kind(file.mime_type)
        if len(file.data) > limit:
            raise too_large(len(file.data), limit)
        form = aiohttp.FormData()
        form.add_field("messaging_product", "whatsapp")
        form.add_field("type", file.mime_type)
        form.add_field("file", file.data, filename=file.filename, content_type=file.mime_type)
        data = await self._call("POST", f"{number.phone_number_id}/media",
                                self._errors(msg.address, number), data=form)
        media_id = str(data.get("id") or "")
        if not media_id:
            raise SendError("Meta returned no media id", code="media", retryable=True)
        wamid = await self._post(number, msg.address, file_message(kind, media_id, file))
        return SendReceipt(platform_message_ids=(wamid,))

    async def fetch_file(self, attachment: Attachment, max_bytes: int) -> bytes:
        """The media id -> a short-lived URL (Graph), then the bytes with the token, only from
        Meta's media hosts or the configured Graph host."""
        media_id = attachment.platform_file_id or ""
        if not media_id.isdigit():
            raise SendError("the attachment has no media id", code="no_media", retryable=False)
        number = self.settings.phone_numbers[0]
        data = await self._call("GET", media_id, self._errors("", number))
        size = data.get("file_size")
        if isinstance(size, int) and size > max_bytes:
            raise too_large(size, max_bytes)
        url = str(data.get("url") or "")
        timeout = aiohttp.ClientTimeout(total=self.settings.request_timeout * 3)
        return await fetch_media(self.ctx.session, url, self._media_hosts, max_bytes,
                                 "WhatsApp media download", client_timeout=timeout,
                                 credentials={"Authorization":
                                              f"Bearer {self.settings.access_token}"})

    async def edit(self, msg: OutboundMessage, platform_ids: Sequence[str]) -> None:
        raise Unsupported("WhatsApp cannot edit a message a business sent: the customer "
                          "still sees the first version; send a correction")

    async def delete(self, address: str, platform_ids: Sequence[str]) -> None:
        raise Unsupported("WhatsApp cannot delete a message a business sent: the customer "
                          "still sees it")

    # -- templates -----------------------------------------------------------------------------
    async def _load_templates(self) -> None:
        number = self.settings.phone_numbers[0]
        try:
            data = await self._call(
                "GET", f"{self.settings.business_account_id}/message_templates",
                self._errors("", number),
                params={"fields": "name,language,status,components", "limit": "250"})
            self._templates = template_names(data)
        except SendError as exc:
            log.warning("whatsapp templates could not be listed: %s", exc.describe())
        self._templates_at = self.ctx.clock()

    def templates(self, address: str) -> Sequence[str]:
        """The approved templates (cached; a stale list is refreshed in the background)."""
        at = self._templates_at
        stale = at is None or self.ctx.clock() - at > self.settings.template_cache_seconds
        if stale and (self._refresh is None or self._refresh.done()):
            self._refresh = asyncio.get_running_loop().create_task(self._load_templates())
        return [name for name, _, _ in self._templates]

    async def send_template(self, msg: OutboundMessage, name: str,
                            variables: Mapping[str, str]) -> SendReceipt:
        """An approved template: the one message allowed outside the 24-hour window."""
        number, _ = self._number(msg.address)
        found = next((t for t in self._templates if t[0] == name), None)
        if found is None:
            await self._load_templates()
            found = next((t for t in self._templates if t[0] == name), None)
        if found is None:
            known = ", ".join(t[0] for t in self._templates) or "none approved"
            raise SendError(f"no approved template named {name!r} (known: {known})",
                            code="unknown_template", retryable=False)
        _, language, count = found
        template: dict[str, Any] = {"name": name, "language": {"code": language}}
        components = template_components(count, variables)
        if components:
            template["components"] = components
        wamid = await self._post(number, msg.address, {"type": "template",
                                                       "template": template})
        return SendReceipt(platform_message_ids=(wamid,))

