"""Meta Graph API stand-in for WhatsApp Cloud, plus a sender that plays Meta's signed webhooks.

Point the connector at it with ``graph_base_url = standin.base_url``.  It serves
``POST /{version}/{phone_number_id}/messages`` (text, interactive, media, template, read
marks), ``POST /{version}/{phone_number_id}/media`` (upload), ``GET /{version}/{media_id}``
(a download URL) and ``GET /lookaside/{media_id}`` (the bytes, Bearer token required),
``GET /{version}/{waba_id}/message_templates``.  It refuses what Meta refuses, with Meta's
error shapes: a bad token (190), a free-form message outside the 24-hour window (131047),
an unknown media id (131053), oversize or malformed payloads (100), a template that is not
approved or lacks parameters (132001, 132000).
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import aiohttp
from aiohttp import web

from bridge.standins.base import JSONDict, StandinBase, read_params
from bridge.standins.messenger import (
    DEFAULT_APP_SECRET,
    DEFAULT_VERSION,
    meta_handshake,
    meta_post,
)

DEFAULT_TOKEN = "standin-whatsapp-token"
DEFAULT_WABA = "102290129340398"
SEND = "messages.send"
READ = "messages.read"
UPLOAD = "media.upload"
MEDIA_URL = "media.get"
DOWNLOAD = "media.download"
TEMPLATES = "templates.list"
NUMBER = "number.get"
WINDOW = 24 * 3600.0
MB = 1024 * 1024
LIMITS = {"image": 5 * MB, "video": 16 * MB, "audio": 16 * MB, "document": 100 * MB,
          "sticker": 500 * 1024}
ERRORS: dict[int, tuple[str, str]] = {
    190: ("Error validating access token: Session has expired.", "OAuthException"),
    100: ("(#100) Invalid parameter", "OAuthException"),
    130429: ("(#130429) Rate limit hit", "OAuthException"),
    131056: ("(#131056) (Business Account, Consumer Account) pair rate limit hit",
             "OAuthException"),
    131047: ("(#131047) Re-engagement message", "OAuthException"),
    131026: ("(#131026) Message undeliverable", "OAuthException"),
    131053: ("(#131053) Media upload error", "OAuthException"),
    132000: ("(#132000) Number of parameters does not match the expected number of params",
             "OAuthException"),
    132001: ("(#132001) Template name does not exist in the translation", "OAuthException"),
    131000: ("(#131000) Something went wrong", "OAuthException"),
}
DETAILS = {
    131047: "Message failed to send because more than 24 hours have passed since the "
            "customer last replied to this number.",
    131026: "Message Undeliverable.",
    130429: "Cloud API message throughput has been reached.",
    131056: "Too many messages sent from the sender phone number to the same recipient "
            "phone number in a short period of time.",
}
_CODED = re.compile(r"^(\d+)/(.*)$", re.S)


def wa_error(code: int, message: str | None = None) -> JSONDict:
    text, kind = ERRORS.get(code, ERRORS[100])
    error: JSONDict = {"message": message or text, "type": kind, "code": code,
                       "fbtrace_id": secrets.token_urlsafe(8)}
    if code in DETAILS or message:
        error["error_data"] = {"messaging_product": "whatsapp",
                               "details": DETAILS.get(code, message or text)}
    return {"error": error}


def wamid() -> str:
    return "wamid." + secrets.token_urlsafe(30)


class WhatsAppStandin(StandinBase):
    """The Graph API endpoints the WhatsApp connector uses, on 127.0.0.1."""

    def __init__(self, numbers: Sequence[str] = ("106540352242922",), *,
                 token: str = DEFAULT_TOKEN, waba: str = DEFAULT_WABA,
                 version: str = DEFAULT_VERSION, clock: Callable[[], float] = time.time,
                 check_window: bool = True) -> None:
        super().__init__()
        self.numbers = set(numbers)
        self.token = token
        self.waba = waba
        self.clock = clock
        self.check_window = check_window
        self.sent: list[JSONDict] = []  # accepted sends: the JSON body plus "phone_number_id"
        self.reads: list[str] = []  # wamids marked read
        self.media: dict[str, tuple[bytes, str]] = {}  # media id -> (bytes, mime type)
        self.templates: list[JSONDict] = []
        self.last_customer: dict[tuple[str, str], float] = {}  # (number id, wa_id) -> time
        self.media_base: str | None = None  # where media URLs point (None: this stand-in)
        r = self.app.router
        r.add_post(f"/{version}/{{number}}/messages", self._h_messages)
        r.add_post(f"/{version}/{{number}}/media", self._h_upload)
        r.add_get(f"/{version}/{{waba}}/message_templates", self._h_templates)
        r.add_get(f"/{version}/{{media}}", self._h_media)
        r.add_get("/lookaside/{media}", self._h_download)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # ------------------------------------------------------------------ test helpers
    def add_template(self, name: str, body: str, *, language: str = "en_US",
                     status: str = "APPROVED") -> None:
        self.templates.append({"name": name, "language": language, "status": status,
                               "category": "UTILITY", "id": str(10**15 + len(self.templates)),
                               "components": [{"type": "BODY", "text": body}]})

    def add_media(self, content: bytes, mime_type: str) -> str:
        """Bytes a customer sent: returns the media id their webhook carries."""
        media_id = str(10**15 + secrets.randbelow(10**15))
        self.media[media_id] = (content, mime_type)
        return media_id

    def customer_wrote(self, phone_number_id: str, wa_id: str, at: float | None = None) -> None:
        """Opens the 24-hour window (the webhook sender calls it for each message)."""
        self.last_customer[(phone_number_id, wa_id)] = self.clock() if at is None else at

    def fail_with_code(self, code: int, *, status: int = 400, count: int = 1,
                       method: str = SEND, message: str | None = None) -> None:
        self.fail_next(method, status=status, count=count, error=f"{code}/{message or ''}")

    def texts(self) -> list[str]:
        return [str(s.get("text", {}).get("body", "")) for s in self.sent if s["type"] == "text"]

    def stats(self) -> JSONDict:
        return {**super().stats(), "sent": len(self.sent)}

    # ------------------------------------------------------------------ plumbing
    def _error(self, method: str, params: JSONDict, request: web.Request, status: int,
               code: int, message: str | None = None) -> web.Response:
        self._record(method, params, request, status, ok=False)
        return web.json_response(wa_error(code, message), status=status)

    async def _checked(self, method: str, params: JSONDict,
                       request: web.Request) -> web.Response | None:
        header = request.headers.get("Authorization", "")
        token = header[7:] if header.startswith("Bearer ") else request.query.get(
            "access_token", "")
        if not token or not secrets.compare_digest(token, self.token):
            return self._error(method, params, request, 401, 190)
        number = request.match_info.get("number")
        if number is not None and number not in self.numbers:
            return self._error(method, params, request, 400, 100,
                               f"(#100) Unsupported post request. Object with ID '{number}' "
                               "does not exist")
        if self._failures or self._delays:
            injection = await self._apply_injections(method)
            if injection is not None:
                match = _CODED.match(injection.error or "")
                if match is None:
                    return self._error(method, params, request, injection.status, 131000)
                return self._error(method, params, request, injection.status,
                                   int(match[1]), match[2] or None)
        return None

    # ------------------------------------------------------------------ handlers
    async def _h_messages(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            body = None
        params: JSONDict = body if isinstance(body, dict) else {}
        method = READ if params.get("status") == "read" else SEND
        refused = await self._checked(method, params, request)
        if refused is not None:
            return refused
        if params.get("messaging_product") != "whatsapp":
            return self._error(method, params, request, 400, 100,
                               "(#100) The parameter messaging_product is required.")
        if method == READ:
            if not str(params.get("message_id", "")).startswith("wamid."):
                return self._error(READ, params, request, 400, 100,
                                   "(#100) Invalid parameter message_id")
            self.reads.append(str(params["message_id"]))
            self._record(READ, params, request)
            return web.json_response({"success": True})
        number, to = request.match_info["number"], str(params.get("to") or "")
        problem = self._problem(params, number, to)
        if problem is not None:
            return self._error(SEND, params, request, 400, *problem)
        message_id = wamid()
        self.sent.append({**params, "phone_number_id": number, "wamid": message_id})
        self._record(SEND, params, request)
        return web.json_response({"messaging_product": "whatsapp",
                                  "contacts": [{"input": to, "wa_id": to}],
                                  "messages": [{"id": message_id}]})

    def _problem(self, params: JSONDict, number: str, to: str) -> tuple[int, str | None] | None:
        """What Meta refuses in a send: (code, message), or None."""
        if not re.fullmatch(r"\d{7,15}", to):
            return 100, "(#100) Invalid parameter: to"
        kind = params.get("type", "text")
        content = params.get(kind) if isinstance(kind, str) else None
        if not isinstance(content, dict):
            return 100, f"(#100) The parameter {kind} is required."
        if kind != "template" and self.check_window:
            last = self.last_customer.get((number, to))
            if last is None or self.clock() - last > WINDOW:
                return 131047, None
        if kind == "text":
            text = str(content.get("body") or "")
            if not text or len(text) > 4096:
                return 100, "(#100) Param text['body'] must be 1 to 4096 characters long."
        elif kind == "interactive":
            return self._interactive_problem(content)
        elif kind in LIMITS:
            if str(content.get("id") or "") not in self.media:
                return 131053, "(#131053) Media upload error: unknown media id"
        elif kind == "template":
            return self._template_problem(content)
        else:
            return 100, f"(#100) Unsupported message type {kind}"
        return None

    def _interactive_problem(self, content: JSONDict) -> tuple[int, str | None] | None:
        body = str((content.get("body") or {}).get("text") or "")
        if not body or len(body) > 1024:
            return 100, "(#100) Param interactive['body']['text'] must be 1 to 1024 characters."
        action = content.get("action") or {}
        if content.get("type") == "button":
            buttons = action.get("buttons") or []
            if not 1 <= len(buttons) <= 3:
                return 100, "(#100) Param interactive['action']['buttons'] must have 1 to 3 items"
            titles = [str(b.get("reply", {}).get("title") or "") for b in buttons]
            ids = [str(b.get("reply", {}).get("id") or "") for b in buttons]
            if any(not 1 <= len(t) <= 20 for t in titles) or len(set(ids)) != len(ids) or \
                    not all(1 <= len(i) <= 256 for i in ids):
                return 100, "(#100) Button titles must be 1 to 20 characters, ids unique, " \
                            "1 to 256 characters"
            return None
        if content.get("type") == "list":
            rows = [r for s in action.get("sections") or [] for r in s.get("rows") or []]
            if not 1 <= len(rows) <= 10:
                return 100, "(#100) A list must have 1 to 10 rows"
            if any(not 1 <= len(str(r.get("title") or "")) <= 24 for r in rows) or \
                    any(len(str(r.get("description") or "")) > 72 for r in rows):
                return 100, "(#100) Row titles must be 1 to 24 characters, descriptions 72"
            row_ids = [str(r.get("id") or "") for r in rows]
            if not all(1 <= len(i) <= 200 for i in row_ids) or len(set(row_ids)) != len(rows):
                return 100, "(#100) Row ids must be 1 to 200 characters and unique"
            if not 1 <= len(str(action.get("button") or "")) <= 20:
                return 100, "(#100) The list's button must be 1 to 20 characters"
            return None
        return 100, "(#100) Unsupported interactive type"

    def _template_problem(self, content: JSONDict) -> tuple[int, str | None] | None:
        name = content.get("name")
        language = (content.get("language") or {}).get("code")
        found = next((t for t in self.templates if t["name"] == name and
                      t["language"] == language and t["status"] == "APPROVED"), None)
        if found is None:
            return 132001, None
        wanted = len(set(re.findall(r"\{\{(\d+)\}\}", found["components"][0]["text"])))
        given = sum(len(c.get("parameters") or []) for c in content.get("components") or []
                    if c.get("type") == "body")
        if wanted != given:
            return 132000, None
        return None

    async def _h_upload(self, request: web.Request) -> web.Response:
        try:
            params = await read_params(request)
        except ValueError:
            params = {}
        refused = await self._checked(UPLOAD, {}, request)
        if refused is not None:
            return refused
        file = params.get("file")
        shown = {k: v for k, v in params.items() if k != "file"}
        if params.get("messaging_product") != "whatsapp" or not isinstance(file, dict):
            return self._error(UPLOAD, shown, request, 400, 100,
                               "(#100) messaging_product and file are required")
        mime = str(file.get("content_type") or "")
        major = mime.split("/")[0]
        kind = {"image": "image", "video": "video", "audio": "audio"}.get(major, "document")
        if len(file["content"]) > LIMITS[kind]:
            return self._error(UPLOAD, shown, request, 400, 131053,
                               f"(#131053) Media upload error: {kind} larger than "
                               f"{LIMITS[kind] // MB} MB")
        media_id = str(10**15 + secrets.randbelow(10**15))
        self.media[media_id] = (file["content"], mime)
        self._record(UPLOAD, {**shown, "filename": file.get("filename"), "size":
                              len(file["content"])}, request)
        return web.json_response({"id": media_id})

    async def _h_media(self, request: web.Request) -> web.Response:
        media_id = request.match_info["media"]
        params: JSONDict = {"media_id": media_id}
        refused = await self._checked(MEDIA_URL, params, request)
        if refused is not None:
            return refused
        if media_id in self.numbers:  # a business number: what check-config --online asks
            self._record(NUMBER, params, request)
            return web.json_response({"id": media_id, "verified_name": "Stand-in Business",
                                      "display_phone_number": "+1 555-078-3881"})
        found = self.media.get(media_id)
        if found is None:
            return self._error(MEDIA_URL, params, request, 400, 100,
                               f"(#100) Unsupported get request. Object with ID '{media_id}' "
                               "does not exist")
        self._record(MEDIA_URL, params, request)
        return web.json_response({"messaging_product": "whatsapp", "id": media_id,
                                  "url": f"{self.media_base or self.base_url}/lookaside/"
                                         f"{media_id}",
                                  "mime_type": found[1], "file_size": len(found[0]),
                                  "sha256": "0" * 64})

    async def _h_download(self, request: web.Request) -> web.Response:
        media_id = request.match_info["media"]
        params: JSONDict = {"media_id": media_id}
        if request.headers.get("Authorization", "") != f"Bearer {self.token}":
            self._record(DOWNLOAD, params, request, 401, ok=False)
            return web.Response(status=401, text="unauthorized")
        found = self.media.get(media_id)
        if found is None:
            self._record(DOWNLOAD, params, request, 404, ok=False)
            return web.Response(status=404, text="not found")
        self._record(DOWNLOAD, params, request)
        return web.Response(body=found[0], content_type=found[1])

    async def _h_templates(self, request: web.Request) -> web.Response:
        params: JSONDict = {"waba": request.match_info["waba"]}
        refused = await self._checked(TEMPLATES, params, request)
        if refused is not None:
            return refused
        if params["waba"] != self.waba:
            return self._error(TEMPLATES, params, request, 400, 100,
                               "(#100) Unsupported get request.")
        self._record(TEMPLATES, params, request)
        return web.json_response({"data": self.templates, "paging": {}})


class WhatsAppWebhookSender:
    """Builds WhatsApp Cloud webhook bodies and delivers them signed, as Meta does.

    ``message(...)``/``status(...)`` build one item; ``change(number, messages, statuses)``
    wraps one phone number's items; ``body(*changes)`` the whole delivery.
    """

    def __init__(self, target_url: str, session: aiohttp.ClientSession, *,
                 app_secret: str = DEFAULT_APP_SECRET, waba: str = DEFAULT_WABA,
                 standin: WhatsAppStandin | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.target_url = target_url
        self.session = session
        self.app_secret = app_secret
        self.waba = waba
        self.standin = standin  # told when a customer writes (the 24-hour window)
        self.clock = clock
        self.names: dict[str, str] = {}  # wa_id -> profile name

    def message(self, wa_id: str, kind: str = "text", content: Any = None, *,
                text: str | None = None, wamid_: str | None = None,
                context: str | None = None) -> JSONDict:
        """One customer message; ``content`` is the type's object (``text`` for a text)."""
        if text is not None:
            kind, content = "text", {"body": text}
        item: JSONDict = {"from": wa_id, "id": wamid_ or wamid(),
                          "timestamp": str(int(self.clock())), "type": kind}
        if content is not None:
            item[kind] = content
        if context is not None:
            item["context"] = {"from": wa_id, "id": context}
        return item

    def status(self, message_id: str, wa_id: str, state: str,
               error: tuple[int, str] | None = None) -> JSONDict:
        item: JSONDict = {"id": message_id, "status": state, "recipient_id": wa_id,
                          "timestamp": str(int(self.clock()))}
        if error is not None:
            code, title = error
            item["errors"] = [{"code": code, "title": title, "message": title,
                               "error_data": {"details": DETAILS.get(code, title)}}]
        return item

    def change(self, phone_number_id: str, messages: Sequence[JSONDict] = (),
               statuses: Sequence[JSONDict] = (), display: str = "15550000000") -> JSONDict:
        value: JSONDict = {"messaging_product": "whatsapp", "metadata": {
            "display_phone_number": display, "phone_number_id": phone_number_id}}
        if messages:
            senders = dict.fromkeys(str(m["from"]) for m in messages)
            value["contacts"] = [{"profile": {"name": self.names.get(w, f"Customer {w[-4:]}")},
                                  "wa_id": w} for w in senders]
            value["messages"] = list(messages)
        if statuses:
            value["statuses"] = list(statuses)
        return {"field": "messages", "value": value}

    def body(self, *changes: JSONDict) -> JSONDict:
        return {"object": "whatsapp_business_account",
                "entry": [{"id": self.waba, "changes": list(changes)}]}

    async def post(self, body: JSONDict | bytes, *, sign: bool = True,
                   app_secret: str | None = None,
                   signature: str | None = None) -> tuple[int, str]:
        if self.standin is not None and isinstance(body, dict):
            self._opened(body)
        return await meta_post(self.session, self.target_url, body,
                               app_secret or self.app_secret, sign=sign, signature=signature)

    def _opened(self, body: Mapping[str, Any]) -> None:
        assert self.standin is not None
        for entry in body.get("entry", []):
            for change in entry.get("changes", []):
                value = change.get("value", {})
                number = value.get("metadata", {}).get("phone_number_id", "")
                for message in value.get("messages", []):
                    self.standin.customer_wrote(number, str(message.get("from")))

    async def send(self, phone_number_id: str, *messages: JSONDict) -> int:
        status, _ = await self.post(self.body(self.change(phone_number_id, messages)))
        return status

    async def handshake(self, verify_token: str, challenge: str = "1158201444",
                        mode: str = "subscribe") -> tuple[int, str, str]:
        return await meta_handshake(self.session, self.target_url, verify_token, challenge,
                                    mode)
