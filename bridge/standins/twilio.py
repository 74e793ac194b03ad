"""Twilio Messaging REST API stand-in, plus a sender that plays Twilio's signed webhooks.

The official SDK has no base-URL parameter; point it here with
``client.api.base_url = standin.base_url`` (the ``Domain.base_url`` attribute, per client).
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import format_datetime
from urllib.parse import urlencode

import aiohttp
from aiohttp import web
from twilio.request_validator import RequestValidator

from bridge.standins.base import Injection, JSONDict, StandinBase

API_VERSION = "2010-04-01"
MORE_INFO = "https://www.twilio.com/docs/errors/{code}"
DEFAULT_ACCOUNT_SID = "AC" + "5a" * 16
DEFAULT_AUTH_TOKEN = "standin0auth0token0000000000000"
CREATE = "messages.create"
MEDIA = "media.fetch"
CDN = "cdn.download"
MAX_BODY = 1600
# Twilio's own wording for the codes tests are likely to inject.
MESSAGES: dict[int, str] = {
    20003: "Authenticate",
    20429: "Too Many Requests",
    20500: "An internal server error has occurred",
    21211: "Invalid 'To' Phone Number",
    21602: "Message body is required.",
    21603: "A 'From' phone number is required.",
    21604: "A 'To' phone number is required.",
    21610: "Attempt to send to unsubscribed recipient",
    21611: "This 'From' number has exceeded the maximum number of queued messages",
    21617: "The concatenated message body exceeds the 1600 character limit.",
    63016: (
        "Failed to send freeform message because you are outside the allowed window. "
        "If you are using WhatsApp, please use a Message Template."
    ),
}
_DEFAULT_CODE = {401: 20003, 404: 20404, 429: 20429, 500: 20500, 503: 20503}
_CODED = re.compile(r"^(\d{5})(?::(.*))?$", re.S)
_GSM7 = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    "ÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà^{}\\[~]|€"
)


def twilio_sid(prefix: str) -> str:
    """A Twilio-shaped SID: two-letter prefix + 32 lowercase hex digits."""
    return prefix + secrets.token_hex(16)


def num_segments(body: str) -> int:
    """SMS segments: GSM-7 160/153 chars, otherwise UCS-2 70/67 chars (UTF-16 units)."""
    if all(ch in _GSM7 for ch in body):
        size = sum(2 if ch in "^{}\\[~]|€" else 1 for ch in body)
        single, part = 160, 153
    else:
        size = len(body.encode("utf-16-le")) // 2
        single, part = 70, 67
    return 1 if size <= single else -(-size // part)


def _rfc2822(at: datetime) -> str:
    return format_datetime(at)  # "Thu, 24 Aug 2023 05:01:45 +0000", like Twilio


def twilio_error(status: int, code: int | None = None, message: str | None = None) -> JSONDict:
    """Twilio's legacy JSON error body (the SDK turns it into ``TwilioRestException``)."""
    code = code if code is not None else _DEFAULT_CODE.get(status, 20001)
    return {
        "code": code,
        "message": message or MESSAGES.get(code, "Bad Request"),
        "more_info": MORE_INFO.format(code=code),
        "status": status,
    }


class TwilioStandin(StandinBase):
    """Messages.json create, authenticated media URLs that redirect to an open CDN path."""

    def __init__(
        self, account_sid: str = DEFAULT_ACCOUNT_SID, auth_token: str = DEFAULT_AUTH_TOKEN
    ) -> None:
        super().__init__()
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.sent: list[JSONDict] = []  # Message resources created, plus "media_url"/"params"
        self.downloads: list[JSONDict] = []  # {"kind": "media"|"cdn", "path", "auth"}
        self.media: dict[str, JSONDict] = {}  # ME sid -> {"content", "content_type", "cdn"}
        self._cdn: dict[str, str] = {}  # cdn key -> ME sid
        base = "/2010-04-01/Accounts/{sid}"
        self.app.router.add_get(base + ".json", self._h_account)
        self.app.router.add_post(base + "/Messages.json", self._h_create)
        self.app.router.add_get(base + "/Messages/{msg}/Media/{media}", self._h_media)
        self.app.router.add_get("/cdn/{key}", self._h_cdn)

    @property
    def base_url(self) -> str:
        """Value for ``client.api.base_url`` (no trailing slash, no version)."""
        return f"http://127.0.0.1:{self.port}"

    # ------------------------------------------------------------------ test helpers
    def add_media(self, content: bytes, content_type: str) -> str:
        """Register bytes; returns a Twilio-style media URL (Basic auth, 302 to ``/cdn/...``)."""
        media_sid, message_sid, key = twilio_sid("ME"), twilio_sid("MM"), secrets.token_hex(20)
        self.media[media_sid] = {"content": content, "content_type": content_type, "cdn": key}
        self._cdn[key] = media_sid
        return (
            f"{self.base_url}/{API_VERSION}/Accounts/{self.account_sid}"
            f"/Messages/{message_sid}/Media/{media_sid}"
        )

    def fail_with_code(
        self, code: int, status: int = 400, message: str | None = None, count: int = 1
    ) -> None:
        """Make the next ``count`` creates answer ``status`` with Twilio error ``code``."""
        text = message or MESSAGES.get(code, "Bad Request")
        self.fail_next(CREATE, status=status, count=count, error=f"{code}:{text}")

    def stats(self) -> JSONDict:
        return {**super().stats(), "sent": len(self.sent), "downloads": len(self.downloads)}

    # ------------------------------------------------------------------ plumbing
    def _authorized(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return secrets.compare_digest(
            f"{user}:{password}", f"{self.account_sid}:{self.auth_token}"
        ) and request.match_info.get("sid", self.account_sid) == self.account_sid

    def _error(
        self, method: str, params: JSONDict, request: web.Request, status: int,
        code: int | None = None, message: str | None = None,
    ) -> web.Response:
        self._record(method, params, request, status, ok=False)
        return web.json_response(twilio_error(status, code, message), status=status)

    def _injected(
        self, method: str, params: JSONDict, request: web.Request, inj: Injection
    ) -> web.Response:
        match = _CODED.match(inj.error or "")
        code = int(match.group(1)) if match else None
        message = (match.group(2) if match else inj.error) or None
        response = self._error(method, params, request, inj.status, code, message)
        if inj.retry_after is not None:
            response.headers["Retry-After"] = str(inj.retry_after)
        return response

    # ------------------------------------------------------------------ handlers
    async def _h_account(self, request: web.Request) -> web.Response:
        """The Account resource (GET .../Accounts/{sid}.json): who the credentials are."""
        if not self._authorized(request):
            return self._error("account", {}, request, 401, 20003)
        self._record("account", {}, request)
        return web.json_response({"sid": self.account_sid, "friendly_name": "Stand-in account",
                                  "status": "active", "type": "Full"})

    async def _h_create(self, request: web.Request) -> web.Response:
        form = await request.post()
        params: JSONDict = {}
        for key, value in form.items():
            text = value if isinstance(value, str) else "<file>"
            if key == "MediaUrl":
                params.setdefault(key, []).append(text)
            else:
                params[key] = text
        if not self._authorized(request):
            return self._error(CREATE, params, request, 401, 20003)
        if self._failures or self._delays:
            injection = await self._apply_injections(CREATE)
            if injection is not None:
                return self._injected(CREATE, params, request, injection)
        to, sender = params.get("To"), params.get("From")
        service = params.get("MessagingServiceSid")
        body, media = params.get("Body", ""), params.get("MediaUrl", [])
        if not to:
            return self._error(CREATE, params, request, 400, 21604)
        if not sender and not service:
            return self._error(CREATE, params, request, 400, 21603)
        if not body and not media and not params.get("ContentSid"):
            return self._error(CREATE, params, request, 400, 21602)
        if len(body) > MAX_BODY:
            return self._error(CREATE, params, request, 400, 21617)
        now = datetime.now(UTC)
        sid = twilio_sid("MM" if media else "SM")
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{sid}"
        resource: JSONDict = {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": body,
            "date_created": _rfc2822(now),
            "date_sent": None,
            "date_updated": _rfc2822(now),
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": sender or None,
            "messaging_service_sid": service or None,
            "num_media": str(len(media)),
            "num_segments": str(num_segments(body)) if body else "1",
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": "queued" if sender else "accepted",
            "subresource_uris": {"media": f"{uri}/Media.json"},
            "to": to,
            "uri": f"{uri}.json",
        }
        self.sent.append({**resource, "media_url": list(media), "params": params})
        self._record(CREATE, params, request, 201)
        return web.json_response(resource, status=201)

    async def _h_media(self, request: web.Request) -> web.StreamResponse:
        params = dict(request.match_info)
        authorized = self._authorized(request)
        self.downloads.append({"kind": "media", "path": request.path, "auth": authorized})
        if not authorized:
            return self._error(MEDIA, params, request, 401, 20003)
        item = self.media.get(request.match_info["media"])
        if item is None:
            return self._error(MEDIA, params, request, 404, 20404,
                               f"The requested resource {request.path} was not found")
        self._record(MEDIA, params, request, 302)
        raise web.HTTPFound(f"{self.base_url}/cdn/{item['cdn']}")

    async def _h_cdn(self, request: web.Request) -> web.Response:
        params = dict(request.match_info)
        media_sid = self._cdn.get(request.match_info["key"])
        self.downloads.append({"kind": "cdn", "path": request.path, "auth": False})
        if media_sid is None:
            self._record(CDN, params, request, 404, ok=False)
            return web.Response(status=404, text="Not Found")
        item = self.media[media_sid]
        self._record(CDN, params, request, 200)
        return web.Response(body=item["content"], content_type=item["content_type"])


class TwilioWebhookSender:
    """Plays Twilio delivering inbound messages and status callbacks to the bridge.

    ``public_url`` is what Twilio was configured with (and signs); ``target_url`` is where the
    request really goes (they differ behind a proxy). Both default to the same URL.
    """

    def __init__(
        self,
        target_url: str,
        auth_token: str,
        session: aiohttp.ClientSession,
        *,
        public_url: str | None = None,
        account_sid: str = DEFAULT_ACCOUNT_SID,
        number: str = "+14155550199",
        whatsapp_number: str = "+14155238886",
    ) -> None:
        self.target_url = target_url
        self.public_url = public_url or target_url
        self.auth_token = auth_token
        self.session = session
        self.account_sid = account_sid
        self.number = number
        self.whatsapp_number = whatsapp_number

    # -- payloads, shaped like Twilio's own --------------------------------------------------
    def _inbound(self, sender: str, to: str, body: str, media: list[tuple[str, str]],
                 message_sid: str | None) -> dict[str, str]:
        sid = message_sid or twilio_sid("MM" if media else "SM")
        params = {
            "ToCountry": "US", "ToState": "CA", "SmsMessageSid": sid, "NumMedia": str(len(media)),
            "ToCity": "", "FromZip": "", "SmsSid": sid, "FromState": "CA", "SmsStatus": "received",
            "FromCity": "", "Body": body, "FromCountry": "US", "To": to, "ToZip": "",
            "NumSegments": str(num_segments(body)) if body else "1", "MessageSid": sid,
            "AccountSid": self.account_sid, "From": sender, "ApiVersion": API_VERSION,
        }
        for n, (url, content_type) in enumerate(media):
            params[f"MediaContentType{n}"] = content_type
            params[f"MediaUrl{n}"] = url
        return params

    def sms(self, *, from_: str, body: str, to: str | None = None,
            media: list[tuple[str, str]] | None = None,
            message_sid: str | None = None) -> dict[str, str]:
        """Inbound SMS/MMS form params; ``media`` is a list of ``(url, content_type)``."""
        return self._inbound(from_, to or self.number, body, media or [], message_sid)

    def whatsapp(self, *, from_: str, body: str, profile_name: str = "Ann",
                 to: str | None = None, media: list[tuple[str, str]] | None = None,
                 message_sid: str | None = None) -> dict[str, str]:
        """Inbound WhatsApp params: ``whatsapp:`` addresses, ``ProfileName`` and ``WaId``."""
        bare = from_.removeprefix("whatsapp:")
        params = self._inbound(f"whatsapp:{bare}", f"whatsapp:{to or self.whatsapp_number}",
                               body, media or [], message_sid)
        for key in ("ToCountry", "ToState", "ToCity", "ToZip",
                    "FromCountry", "FromState", "FromCity", "FromZip"):
            del params[key]
        params.update({"ProfileName": profile_name, "WaId": bare.lstrip("+"),
                       "MessageType": "image" if media else "text", "ChannelMetadata": ""})
        return params

    def status(self, *, message_sid: str, status: str, to: str, from_: str | None = None,
               error_code: int | str | None = None) -> dict[str, str]:
        """A status callback: ``MessageSid``, ``MessageStatus`` and (on failure) ``ErrorCode``."""
        params = {
            "SmsSid": message_sid, "SmsStatus": status, "MessageStatus": status, "To": to,
            "MessageSid": message_sid, "AccountSid": self.account_sid,
            "From": from_ or self.number, "ApiVersion": API_VERSION,
        }
        if error_code is not None:
            params["ErrorCode"] = str(error_code)
        return params

    # -- signing and delivery -----------------------------------------------------------------
    def signature(self, params: Mapping[str, str], *, path: str = "", token: str | None = None,
                  public_url: str | None = None) -> str:
        """``X-Twilio-Signature`` for ``params`` posted to ``public_url + path``."""
        validator = RequestValidator(self.auth_token if token is None else token)
        url = (public_url or self.public_url) + path
        return str(validator.compute_signature(url, dict(params)))

    async def post(
        self,
        params: Mapping[str, str],
        *,
        path: str = "",
        target_url: str | None = None,
        public_url: str | None = None,
        token: str | None = None,
        sign: bool = True,
        extra: Mapping[str, str] | None = None,
        raw_body: bytes | None = None,
        idempotency_token: str | None = None,
    ) -> tuple[int, str]:
        """POST form-encoded, signed like Twilio; returns (status, response text).

        ``extra`` adds (unknown) params before signing, as Twilio does without notice;
        ``token`` signs with another auth token; ``sign=False`` omits the signature;
        ``raw_body`` sends those bytes instead (signed over ``params``); reuse
        ``idempotency_token`` to play a retry of the same delivery.
        """
        fields = {**params, **(extra or {})}
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "User-Agent": "TwilioProxy/1.1",
            "I-Twilio-Idempotency-Token": idempotency_token or str(uuid.uuid4()),
        }
        if sign:
            headers["X-Twilio-Signature"] = self.signature(
                fields, path=path, token=token, public_url=public_url
            )
        data = raw_body if raw_body is not None else urlencode(fields).encode()
        url = (target_url or self.target_url) + path
        async with self.session.post(url, data=data, headers=headers) as resp:
            return resp.status, await resp.text()
