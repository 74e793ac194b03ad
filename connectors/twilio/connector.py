"""Twilio customer connector: SMS and WhatsApp over one account (twilio SDK, async client)."""

from __future__ import annotations

import base64
import hmac
import json
import logging
import time
from collections.abc import Mapping, Sequence
from typing import ClassVar
from urllib.parse import quote, urlsplit

import aiohttp
from aiohttp import web
from pydantic import BaseModel
from twilio.base.exceptions import TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.request_validator import RequestValidator, get_signature_algorithm
from twilio.rest import Client

from connectors.base import (
    Connector,
    ConnectorContext,
    OptedOut,
    OutsideWindow,
    SendError,
    Unauthorized,
    Unsupported,
    WebhookRejected,
    fetch_media,
)
from connectors.twilio.parse import (
    ERRORS,
    NAME,
    is_whatsapp,
    parse_form,
    parse_message,
    parse_status,
)
from connectors.twilio.settings import TwilioSettings
from vocab.models import (
    Attachment,
    InboundMessage,
    OutboundFile,
    OutboundMessage,
    SendReceipt,
)
from vocab.split import SMS_LIMIT, split_plain
from vocab.untrusted import HostRule, origin

log = logging.getLogger(__name__)
SIGNATURE = "X-Twilio-Signature"
SIGNATURE_SETTINGS = "X-Twilio-Webhooks-Signature-Settings"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response />'
API_HOST = "api.twilio.com"  # media URLs: Basic auth here only
MEDIA_HOSTS = (API_HOST, ".twiliocdn.com", ".twilio.com")  # the API and the CDN it redirects to
PERMANENT = frozenset({21211, 21614, 63024, 21408, 20003})
MMS_MEDIA_BYTES = 5 * 1048576  # Twilio's MMS limit
WHATSAPP_MEDIA_BYTES = 16 * 1048576  # WhatsApp media, per Twilio
WHATSAPP_MEDIA_TYPES = ("image/jpeg", "image/png", "audio/", "video/mp4", "application/pdf",
                        "text/vcard")
WINDOW = 24 * 3600.0  # WhatsApp's customer service window, from the customer's last message


def send_error(exc: TwilioRestException) -> SendError:
    code = exc.code
    if exc.status == 429 or code == 20429:
        return SendError("Twilio is busy (too many concurrent requests)", code="20429",
                         retryable=True, retry_after=1.0)
    if code == 21610:
        return OptedOut(f"Twilio refused: {ERRORS[21610]}", code="21610")
    if code == 63016:
        return OutsideWindow("WhatsApp's 24-hour window is closed (Twilio error 63016): only an "
                             "approved template can reach the customer until they write again")
    if code in PERMANENT:
        return SendError(f"Twilio refused: {ERRORS[code]}", code=str(code), retryable=False)
    if exc.status >= 500:
        return SendError(f"Twilio error {exc.status}: {exc.msg}", code=str(code or exc.status),
                         retryable=True)
    return SendError(f"Twilio refused the message: {exc.msg}", code=str(code or exc.status),
                     retryable=False)


def segments_note(address: str, segments: Sequence[int]) -> str | None:
    """For a long SMS: how many messages and billed segments it took."""
    total = sum(segments)
    if is_whatsapp(address) or total <= 1:
        return None
    parts = f"{len(segments)} messages, " if len(segments) > 1 else ""
    return f":information_source: Sent as SMS: {parts}{total} segments in all."


class TwilioConnector(Connector):
    name: ClassVar[str] = NAME
    Settings: ClassVar[type[BaseModel]] = TwilioSettings
    fetches_media_by_url: ClassVar[bool] = True  # Twilio fetches MediaUrl itself

    def __init__(self, settings: BaseModel, ctx: ConnectorContext) -> None:
        super().__init__(settings, ctx)
        assert isinstance(settings, TwilioSettings)
        self.settings = settings
        self._validator = RequestValidator(settings.auth_token)
        self._key_validator = (RequestValidator(settings.webhook_signing_key)
                               if settings.webhook_signing_key else None)
        self._http: AsyncTwilioHttpClient | None = None
        self.client: Client | None = None
        self._api_host = urlsplit(settings.api_base_url).netloc
        api = origin(settings.api_base_url)
        self._media_hosts = HostRule.of(MEDIA_HOSTS, [settings.api_base_url],
                                        credentials=[API_HOST, *([api] if api else [])])

    @property
    def status_url(self) -> str:
        return f"{self.webhook_url}/status"

    async def start(self) -> None:
        # Created inside the running loop: the SDK's aiohttp session binds to it.
        self._http = AsyncTwilioHttpClient(timeout=self.settings.request_timeout)
        client = Client(self.settings.account_sid, self.settings.auth_token,
                        http_client=self._http)
        client.api.base_url = self.settings.api_base_url  # the SDK has no base-URL argument
        self.client = client

    async def stop(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    # -- inbound -----------------------------------------------------------------------------
    content_types = ("application/x-www-form-urlencoded",)

    def precheck(self, request: web.Request) -> None:
        if not request.headers.get(SIGNATURE):
            raise Unauthorized(f"missing {SIGNATURE}")

    async def verify(self, request: web.Request, body: bytes) -> None:
        form = parse_form(body)  # 400 before 401: an unparsable form cannot be checked
        url = self.ctx.public_url + request.path_qs  # what Twilio signed, behind any proxy
        signature = request.headers.get(SIGNATURE, "")
        settings_header = request.headers.get(SIGNATURE_SETTINGS)
        if settings_header and self._key_validator is not None:
            ok = self._key_validator.validate(url, form, signature,
                                              algorithm=get_signature_algorithm(settings_header))
        elif not signature or not signature.isascii():
            ok = False
        else:
            # The SDK's `validate` always signs the URL twice (with and without the default
            # port); the exact URL first is the common case and halves the cost.
            ok = (hmac.compare_digest(self._validator.compute_signature(url, form), signature)
                  or self._validator.validate(url, form, signature))
        if not ok:
            raise Unauthorized("missing or wrong X-Twilio-Signature")

    def routes(self) -> list[web.RouteDef]:
        return [web.post(self.webhook_path, self.handle_webhook),
                web.post(f"{self.webhook_path}/status", self.handle_status)]

    async def handle_status(self, request: web.Request) -> web.StreamResponse:
        """Delivery receipts: verified like messages, committed (forward only), then 200.
        A callback for a MessageSid the bridge never sent is acknowledged and ignored."""
        try:
            body = await self.read_verified(request)
            form = self.parsed(lambda: parse_form(body))
            receipt = self.parsed(lambda: parse_status(form))
        except WebhookRejected as exc:
            return self.rejected(exc, request)
        if receipt is not None:
            # 63016: Twilio's clock says the window closed; offer the templates, as before a send
            templates = self.templates(form.get("To", "")) if form.get("ErrorCode") == "63016" \
                else ()
            await self.ctx.receipt(self.name, *receipt, templates)  # raises -> 500, Twilio retries
        return self.acknowledge()

    def parse(self, body: bytes) -> list[InboundMessage]:
        return parse_message(parse_form(body))

    def acknowledge(self) -> web.StreamResponse:
        return web.Response(text=EMPTY_TWIML, content_type="text/xml")

    # -- outbound ----------------------------------------------------------------------------
    # -- continuity ---------------------------------------------------------------------------
    def channels(self) -> Sequence[str]:
        return self.settings.channels

    def handoff_invite(self, channel: str, code: str) -> str | None:
        """A wa.me link that opens WhatsApp with the code typed in, or the number to text the
        code to; None without a known number (a messaging service without sms_number or
        whatsapp_number)."""
        number = self.settings.handoff_numbers.get(channel)
        if channel not in self.channels() or number is None:
            return None
        if channel == "whatsapp":
            return (f"To continue on WhatsApp, open https://wa.me/{number.lstrip('+')}"
                    f"?text={quote(code, safe='')} and send the message as it is.")
        return f"To continue by SMS, text {code} to {number}."

    def _sender(self, address: str) -> dict[str, str]:
        if is_whatsapp(address):
            if self.settings.whatsapp_from:
                return {"from_": self.settings.whatsapp_from}
            if self.settings.messaging_service_sid:  # a service may hold WhatsApp senders
                return {"messaging_service_sid": self.settings.messaging_service_sid}
            raise SendError("no WhatsApp sender is configured (whatsapp_from)",
                            code="config", retryable=False)
        if self.settings.messaging_service_sid:
            return {"messaging_service_sid": self.settings.messaging_service_sid}
        if not self.settings.sms_from:
            raise SendError("no SMS sender is configured (sms_from or messaging_service_sid)",
                            code="config", retryable=False)
        return {"from_": self.settings.sms_from}

    async def _create(self, address: str, **fields: object) -> tuple[str, int]:
        """One Messages.json create: (MessageSid, segments)."""
        assert self.client is not None, "connector not started"
        try:
            message = await self.client.messages.create_async(
                to=address, status_callback=self.status_url, **self._sender(address), **fields)
        except TwilioRestException as exc:
            raise send_error(exc) from exc
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise SendError(f"Twilio unreachable: {exc!r}", code="network",
                            retryable=True) from exc
        try:
            segments = int(message.num_segments or 1)
        except (TypeError, ValueError):
            segments = 1
        return str(message.sid), segments

    def _check_window(self, msg: OutboundMessage) -> None:
        """WhatsApp: free-form messages only within 24 hours of the customer's last message;
        nothing is attempted outside it."""
        if not is_whatsapp(msg.address):
            return
        last = msg.last_inbound_at
        if last is not None and self.ctx.clock() - last < WINDOW:
            return
        since = ("the customer has not written yet" if last is None else
                 "the customer last wrote " + time.strftime("%Y-%m-%d %H:%M UTC",
                                                            time.gmtime(last)))
        raise OutsideWindow(f"WhatsApp's 24-hour window is closed ({since}): only an approved "
                            "template can reach them until they write again")

    async def send(self, msg: OutboundMessage) -> SendReceipt:
        self._check_window(msg)
        # No sender names on SMS/WhatsApp: the agent's name leads the text.
        text = f"{msg.author_name}: {msg.text}"
        sent = [await self._create(msg.address, body=part)
                for part in split_plain(text, SMS_LIMIT)]
        return SendReceipt(platform_message_ids=tuple(sid for sid, _ in sent),
                           note=segments_note(msg.address, [n for _, n in sent]))

    async def send_file(self, msg: OutboundMessage, file: OutboundFile) -> SendReceipt:
        """Twilio fetches the file itself from the bridge's GET /media/<token> URL."""
        assert file.url is not None, "media_by_url connectors get a public URL"
        self._check_window(msg)
        whatsapp = is_whatsapp(msg.address)
        limit = WHATSAPP_MEDIA_BYTES if whatsapp else MMS_MEDIA_BYTES
        if len(file.data) > limit:
            raise Unsupported(f"{'WhatsApp' if whatsapp else 'MMS'} carries files up to "
                              f"{limit // 1048576} MB")
        if whatsapp and not file.mime_type.startswith(WHATSAPP_MEDIA_TYPES):
            raise Unsupported(f"WhatsApp does not carry {file.mime_type} files")
        sid, _ = await self._create(msg.address, body=f"{msg.author_name}:",
                                    media_url=[file.url])
        return SendReceipt(platform_message_ids=(sid,))

    def templates(self, address: str) -> Sequence[str]:
        return [t.name for t in self.settings.templates] if is_whatsapp(address) else ()

    async def send_template(self, msg: OutboundMessage, name: str,
                            variables: Mapping[str, str]) -> SendReceipt:
        """An approved WhatsApp template (Content SID): allowed outside the 24-hour window.
        The configured variables are the defaults; the agent's values win."""
        template = next((t for t in self.settings.templates if t.name == name), None)
        if template is None:
            known = ", ".join(t.name for t in self.settings.templates) or "none configured"
            raise SendError(f"no template named {name!r} (known: {known})",
                            code="unknown_template", retryable=False)
        if not is_whatsapp(msg.address):
            raise SendError("templates are for WhatsApp; this customer writes by SMS, so a "
                            "normal reply works", code="unsupported", retryable=False)
        values = {**template.variables, **variables}
        fields: dict[str, object] = {"content_sid": template.content_sid}
        if values:
            fields["content_variables"] = json.dumps(values)
        sid, _ = await self._create(msg.address, **fields)
        return SendReceipt(platform_message_ids=(sid,))

    async def fetch_file(self, attachment: Attachment, max_bytes: int) -> bytes:
        """Media URLs need the account's credentials, and only on the Twilio API host; the CDN
        it redirects to is fetched without them, and only a Twilio host (or the configured
        API's origin) is fetched at all."""
        url = attachment.url or ""
        if urlsplit(url).netloc != self._api_host:
            raise SendError(f"media URL is not on {self._api_host}", code="foreign_url",
                            retryable=False)
        token = base64.b64encode(
            f"{self.settings.account_sid}:{self.settings.auth_token}".encode()).decode()
        return await fetch_media(self.ctx.session, url, self._media_hosts, max_bytes,
                                 "Twilio media download",
                                 credentials={"Authorization": f"Basic {token}"})
