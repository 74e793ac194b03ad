"""Meta Graph API stand-in for Messenger, plus a sender that plays Meta's signed webhooks.

Point the connector at it with ``graph_base_url = standin.base_url``.  It serves the Send API
(``POST /{version}/me/messages``), profile lookups (``GET /{version}/{psid}``), personas
(``POST /{version}/{page_id}/personas``) and attachment URLs (``GET /cdn/{key}``), and can be
told to answer the next sends with one of Meta's error codes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import aiohttp
from aiohttp import web

from bridge.standins.base import JSONDict, StandinBase

DEFAULT_VERSION = "v25.0"
DEFAULT_APP_SECRET = "standin-app-secret"
DEFAULT_APP_ID = "900000000000001"
PAGE_INBOX_APP_ID = "263902037430900"  # the app id Meta's Page Inbox echoes carry
SEND = "messages.send"
PROFILE = "profile.get"
PERSONA = "personas.create"
CDN = "cdn.download"
TEXT_LIMIT = 2000
# Meta's wording for the codes tests are likely to inject: (message, type).
ERRORS: dict[int, tuple[str, str]] = {
    4: ("(#4) Application request limit reached", "OAuthException"),
    10: ("(#10) This message is sent outside of allowed window.", "OAuthException"),
    100: ("(#100) Invalid parameter", "OAuthException"),
    190: ("Error validating access token: Session has expired.", "OAuthException"),
    551: ("(#551) This person isn't available right now.", "OAuthException"),
    613: ("(#613) Calls to this api have exceeded the rate limit.", "OAuthException"),
    2: ("An unexpected error has occurred. Please retry your request later.",
        "OAuthException"),
}
_CODED = re.compile(r"^(\d+)/(\d*)/(.*)$", re.S)


def meta_error(code: int, subcode: int | None = None, message: str | None = None) -> JSONDict:
    text, kind = ERRORS.get(code, ("(#100) Invalid parameter", "OAuthException"))
    error: JSONDict = {"message": message or text, "type": kind, "code": code,
                       "fbtrace_id": secrets.token_urlsafe(8)}
    if subcode is not None:
        error["error_subcode"] = subcode
    return {"error": error}


def _quick_replies(value: object) -> bool:
    """Meta's checks of `message.quick_replies` (text ones)."""
    if not isinstance(value, list) or not 1 <= len(value) <= 13:
        return False
    for item in value:
        if not isinstance(item, dict) or item.get("content_type") != "text":
            return False
        title, payload = item.get("title"), item.get("payload")
        if not isinstance(title, str) or not 0 < len(title) <= 20:
            return False
        if not isinstance(payload, str) or not 0 < len(payload) <= 1000:
            return False
    return True


class MessengerStandin(StandinBase):
    """The Graph API endpoints the Messenger connector uses, on 127.0.0.1."""

    def __init__(self, pages: Mapping[str, str] | None = None,
                 version: str = DEFAULT_VERSION) -> None:
        super().__init__()
        self.version = version
        self.pages = dict(pages or {})  # page id -> access token ({}: any token, page "me")
        self.sent: list[JSONDict] = []  # accepted sends: the JSON body plus "page_id", "mid"
        self.profiles: dict[str, JSONDict] = {}  # psid -> {"first_name", "last_name"}
        self.personas: dict[str, JSONDict] = {}  # persona id -> {"page_id", "name", ...}
        self.files: dict[str, tuple[bytes, str]] = {}  # cdn key -> (content, content type)
        self.app.router.add_post(f"/{version}/me/messages", self._h_send)
        self.app.router.add_post(f"/{version}/{{page}}/messages", self._h_send)
        self.app.router.add_post(f"/{version}/{{page}}/personas", self._h_persona)
        self.app.router.add_get(f"/{version}/{{psid}}", self._h_profile)
        self.app.router.add_get("/cdn/{key}/{name}", self._h_cdn)

    @property
    def base_url(self) -> str:
        """Value for ``graph_base_url`` (no version, no trailing slash)."""
        return f"http://127.0.0.1:{self.port}"

    # ------------------------------------------------------------------ test helpers
    def add_profile(self, psid: str, first_name: str, last_name: str = "") -> None:
        self.profiles[psid] = {"first_name": first_name, "last_name": last_name, "id": psid}

    def add_attachment(self, content: bytes, content_type: str,
                       filename: str = "file.bin") -> str:
        """Register bytes; returns a CDN-like URL for an inbound attachment's payload."""
        key = secrets.token_hex(16)
        self.files[key] = (content, content_type)
        return f"{self.base_url}/cdn/{key}/{filename}?oh={secrets.token_hex(8)}"

    def fail_with_code(self, code: int, subcode: int | None = None, *, status: int = 400,
                       count: int = 1, method: str = SEND, message: str | None = None) -> None:
        """Answer the next ``count`` calls to ``method`` with Meta error ``code``."""
        self.fail_next(method, status=status, count=count,
                       error=f"{code}/{'' if subcode is None else subcode}/{message or ''}")

    def texts(self) -> list[str]:
        return [str(s["message"].get("text", "")) for s in self.sent]

    def stats(self) -> JSONDict:
        return {**super().stats(), "sent": len(self.sent)}

    # ------------------------------------------------------------------ plumbing
    def _page_for(self, request: web.Request) -> str | None:
        """The page whose token came with the request (Bearer or ?access_token=)."""
        header = request.headers.get("Authorization", "")
        token = header[7:] if header.startswith("Bearer ") else request.query.get(
            "access_token", "")
        if not token:
            return None
        if not self.pages:
            return request.match_info.get("page", "me")
        return next((p for p, t in self.pages.items() if secrets.compare_digest(t, token)), None)

    def _error(self, method: str, params: JSONDict, request: web.Request, status: int,
               code: int, subcode: int | None = None,
               message: str | None = None) -> web.Response:
        self._record(method, params, request, status, ok=False)
        return web.json_response(meta_error(code, subcode, message), status=status)

    async def _checked(self, method: str, params: JSONDict,
                       request: web.Request) -> tuple[str | None, web.Response | None]:
        page = self._page_for(request)
        if page is None:
            return None, self._error(method, params, request, 400, 190)
        if "page" in request.match_info and self.pages and request.match_info["page"] != page:
            return None, self._error(method, params, request, 400, 100,
                                     message="(#100) The token is for another page")
        if self._failures or self._delays:
            injection = await self._apply_injections(method)
            if injection is not None:
                match = _CODED.match(injection.error or "")
                if match is None:
                    return None, self._error(method, params, request, injection.status, 2)
                code, sub, text = match.groups()
                return None, self._error(method, params, request, injection.status, int(code),
                                         int(sub) if sub else None, text or None)
        return page, None

    # ------------------------------------------------------------------ handlers
    async def _h_send(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            body = None
        params: JSONDict = body if isinstance(body, dict) else {}
        page, refused = await self._checked(SEND, params, request)
        if refused is not None:
            return refused
        recipient = params.get("recipient") or {}
        message = params.get("message") or {}
        if not isinstance(recipient, dict) or not recipient.get("id"):
            return self._error(SEND, params, request, 400, 100,
                               message="(#100) The parameter recipient is required")
        if not isinstance(message, dict) or not (message.get("text") or
                                                 message.get("attachment")):
            return self._error(SEND, params, request, 400, 100,
                               message="(#100) The parameter message is required")
        if len(str(message.get("text", ""))) > TEXT_LIMIT:
            return self._error(SEND, params, request, 400, 100,
                               message="(#100) Length of param message[text] must be less "
                                       "than or equal to 2000")
        quick = message.get("quick_replies")
        if quick is not None and not _quick_replies(quick):
            return self._error(SEND, params, request, 400, 100,
                               message="(#100) param message[quick_replies] must be an array "
                                       "of 1 to 13 quick replies, each with a title of at most "
                                       "20 characters and a payload of at most 1000")
        kind = params.get("messaging_type")
        if kind not in ("RESPONSE", "UPDATE", "MESSAGE_TAG") or (
                kind == "MESSAGE_TAG" and not params.get("tag")):
            return self._error(SEND, params, request, 400, 100,
                               message="(#100) messaging_type or tag is missing or invalid")
        mid = "m_" + secrets.token_urlsafe(24)
        self.sent.append({**params, "page_id": page, "mid": mid})
        self._record(SEND, params, request)
        return web.json_response({"recipient_id": recipient["id"], "message_id": mid})

    async def _h_persona(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            body = None
        params: JSONDict = body if isinstance(body, dict) else {}
        _, refused = await self._checked(PERSONA, params, request)
        if refused is not None:
            return refused
        if not params.get("name"):
            return self._error(PERSONA, params, request, 400, 100,
                               message="(#100) The parameter name is required")
        persona = str(10**15 + len(self.personas) + 1)
        self.personas[persona] = {**params, "page_id": request.match_info["page"]}
        self._record(PERSONA, params, request)
        return web.json_response({"id": persona})

    async def _h_profile(self, request: web.Request) -> web.Response:
        params: JSONDict = dict(request.query)
        params.pop("access_token", None)
        params["psid"] = request.match_info["psid"]
        page, refused = await self._checked(PROFILE, params, request)
        if refused is not None:
            return refused
        if params["psid"] in (page, "me"):  # the Page itself, as its token sees it
            self._record(PROFILE, params, request)
            return web.json_response({"id": page, "name": f"Stand-in Page {page}"})
        profile = self.profiles.get(params["psid"])
        if profile is None:
            return self._error(PROFILE, params, request, 400, 100,
                               message="(#100) Unsupported get request.")
        fields = str(params.get("fields") or "first_name,last_name").split(",")
        self._record(PROFILE, params, request)
        return web.json_response({k: v for k, v in profile.items() if k in fields or k == "id"})

    async def _h_cdn(self, request: web.Request) -> web.Response:
        params = dict(request.match_info)
        found = self.files.get(request.match_info["key"])
        if found is None:
            self._record(CDN, params, request, 404, ok=False)
            return web.Response(status=404, text="URL signature expired")
        self._record(CDN, params, request)
        return web.Response(body=found[0], content_type=found[1])


# -- Meta's side of the webhook -----------------------------------------------------------------
def meta_json(body: Any) -> bytes:
    """Serialized as Meta sends it: compact, non-ASCII escaped (``\\u00e9``), ``/`` escaped."""
    return json.dumps(body, ensure_ascii=True, separators=(",", ":")).replace("/", "\\/").encode()


def meta_signature(app_secret: str, raw: bytes) -> str:
    """``X-Hub-Signature-256``: HMAC-SHA256 of the raw bytes with the app secret."""
    return "sha256=" + hmac.new(app_secret.encode(), raw, hashlib.sha256).hexdigest()


async def meta_post(session: aiohttp.ClientSession, url: str, body: JSONDict | bytes,
                    app_secret: str, *, sign: bool = True,
                    signature: str | None = None) -> tuple[int, str]:
    """POST a webhook body as Meta does (Messenger, WhatsApp Cloud): signed with
    `app_secret` unless `signature` overrides the header or `sign` is off; (status, text)."""
    raw = body if isinstance(body, bytes) else meta_json(body)
    headers = {"Content-Type": "application/json", "User-Agent": "facebookexternalua"}
    if signature is not None:
        headers["X-Hub-Signature-256"] = signature
    elif sign:
        headers["X-Hub-Signature-256"] = meta_signature(app_secret, raw)
    async with session.post(url, data=raw, headers=headers) as resp:
        return resp.status, await resp.text()


async def meta_handshake(session: aiohttp.ClientSession, url: str, verify_token: str,
                         challenge: str, mode: str) -> tuple[int, str, str]:
    """Meta's GET subscription check: (status, text, content type)."""
    params = {"hub.mode": mode, "hub.verify_token": verify_token, "hub.challenge": challenge}
    async with session.get(url, params=params) as resp:
        return resp.status, await resp.text(), resp.content_type


class MessengerWebhookSender:
    """Builds Messenger webhook events and delivers them signed, as Meta does.

    Event builders return one event; ``entry(page_id, *events)`` wraps events of one page and
    ``body(*entries)`` the whole delivery (several entries batch several pages).
    """

    def __init__(self, target_url: str, app_secret: str, session: aiohttp.ClientSession,
                 *, clock: Callable[[], float] = time.time) -> None:
        self.target_url = target_url
        self.app_secret = app_secret
        self.session = session
        self.clock = clock

    def _ms(self) -> int:
        return int(self.clock() * 1000)

    # -- events ------------------------------------------------------------------------------
    def message(self, page_id: str, psid: str, text: str = "", *, mid: str | None = None,
                attachments: Sequence[tuple[str, str]] = (), quick_reply: str | None = None,
                reply_to: str | None = None) -> JSONDict:
        """A customer's message; ``attachments`` are ``(type, url)`` pairs."""
        message: JSONDict = {"mid": mid or "m_" + secrets.token_urlsafe(24)}
        if text:
            message["text"] = text
        if attachments:
            message["attachments"] = [{"type": kind, "payload": {"url": url}}
                                      for kind, url in attachments]
        if quick_reply is not None:
            message["quick_reply"] = {"payload": quick_reply}
        if reply_to is not None:
            message["reply_to"] = {"mid": reply_to}
        return {"sender": {"id": psid}, "recipient": {"id": page_id},
                "timestamp": self._ms(), "message": message}

    def echo(self, page_id: str, psid: str, text: str, *, app_id: str | None,
             mid: str | None = None, metadata: str | None = None) -> JSONDict:
        """A message the page sent (``app_id`` None: no app id, as some echoes come)."""
        message: JSONDict = {"is_echo": True, "mid": mid or "m_" + secrets.token_urlsafe(24),
                             "text": text}
        if app_id is not None:
            message["app_id"] = int(app_id)
        if metadata is not None:
            message["metadata"] = metadata
        return {"sender": {"id": page_id}, "recipient": {"id": psid},
                "timestamp": self._ms(), "message": message}

    def postback(self, page_id: str, psid: str, title: str, payload: str,
                 ref: str | None = None) -> JSONDict:
        postback: JSONDict = {"title": title, "payload": payload,
                              "mid": "m_" + secrets.token_urlsafe(24)}
        if ref is not None:
            postback["referral"] = {"ref": ref, "source": "SHORTLINK", "type": "OPEN_THREAD"}
        return {"sender": {"id": psid}, "recipient": {"id": page_id},
                "timestamp": self._ms(), "postback": postback}

    def referral(self, page_id: str, psid: str, ref: str) -> JSONDict:
        """``messaging_referrals``: the customer opened the thread from an m.me link."""
        return {"sender": {"id": psid}, "recipient": {"id": page_id}, "timestamp": self._ms(),
                "referral": {"ref": ref, "source": "SHORTLINK", "type": "OPEN_THREAD"}}

    def delivery(self, page_id: str, psid: str, *, watermark: float | None = None,
                 mids: Sequence[str] = ()) -> JSONDict:
        mark = self._ms() if watermark is None else int(watermark * 1000)
        data: JSONDict = {"watermark": mark}
        if mids:
            data["mids"] = list(mids)
        return {"sender": {"id": psid}, "recipient": {"id": page_id}, "timestamp": self._ms(),
                "delivery": data}

    def read(self, page_id: str, psid: str, *, watermark: float | None = None) -> JSONDict:
        mark = self._ms() if watermark is None else int(watermark * 1000)
        return {"sender": {"id": psid}, "recipient": {"id": page_id}, "timestamp": self._ms(),
                "read": {"watermark": mark}}

    # -- envelopes ---------------------------------------------------------------------------
    def entry(self, page_id: str, *events: JSONDict, standby: bool = False) -> JSONDict:
        return {"id": page_id, "time": self._ms(),
                "standby" if standby else "messaging": list(events)}

    def body(self, *entries: JSONDict, object_: str = "page") -> JSONDict:
        return {"object": object_, "entry": list(entries)}

    # -- delivery ----------------------------------------------------------------------------
    async def post(self, body: JSONDict | bytes, *, sign: bool = True,
                   app_secret: str | None = None,
                   signature: str | None = None) -> tuple[int, str]:
        """POST signed like Meta (``signature`` overrides the header); (status, text)."""
        return await meta_post(self.session, self.target_url, body,
                               app_secret or self.app_secret, sign=sign, signature=signature)

    async def send(self, page_id: str, *events: JSONDict) -> int:
        """One page's events in one signed delivery; the status."""
        status, _ = await self.post(self.body(self.entry(page_id, *events)))
        return status

    async def handshake(self, verify_token: str, challenge: str = "1158201444",
                        mode: str = "subscribe") -> tuple[int, str, str]:
        """Meta's GET subscription check: (status, text, content type)."""
        return await meta_handshake(self.session, self.target_url, verify_token, challenge,
                                    mode)
