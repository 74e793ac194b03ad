"""Telegram Bot API stand-in for python-telegram-bot (``Bot(token, base_url=...)``)."""

from __future__ import annotations

import asyncio
import html
import json
import re
import time
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

import aiohttp
from aiohttp import web

from bridge.standins.base import Injection, JSONDict, StandinBase, read_params
from bridge.standins.signing import telegram_secret_headers
from bridge.standins.telegram_markup import TelegramAPIError as TelegramAPIError
from bridge.standins.telegram_markup import inline_keyboard

_TAG = re.compile(r"<[^>]*>")
_TRUE = ("true", "True", "1")
CONFLICT = (
    "Conflict: can't use getUpdates method while webhook is active; "
    "use deleteWebhook to delete the webhook first"
)
CONFLICT_TERMINATED = (
    "Conflict: terminated by other getUpdates request; "
    "make sure that only one bot instance is running"
)
MAX_POLL_TIMEOUT = 50.0  # seconds a getUpdates long poll may be held (Telegram's own bound)


def _chat(chat_id: Any) -> JSONDict:
    try:
        cid = int(chat_id)
    except (TypeError, ValueError):
        raise TelegramAPIError(400, "Bad Request: chat not found") from None
    if cid > 0:
        return {"id": cid, "type": "private", "first_name": "Customer"}
    kind = "supergroup" if str(cid).startswith("-100") else "group"
    return {"id": cid, "type": kind, "title": "Stand-in group"}


def _visible_len(text: str, parse_mode: str | None) -> int:
    if parse_mode is None:
        return len(text)
    if parse_mode.upper() == "HTML":
        return len(html.unescape(_TAG.sub("", text)))
    return len(text.replace("\\", ""))


class TelegramStandin(StandinBase):
    """Enough of the Bot API for PTB's ``Bot``: sends, files, webhooks and long polling."""

    def __init__(self, token: str = "123456:STANDIN", bot_username: str = "bridge_standin_bot"):
        super().__init__()
        self.token = token
        self.bot_username = bot_username
        prefix = token.split(":", 1)[0]
        self.bot_user_id = int(prefix) if prefix.isdigit() else 123456
        self.me: JSONDict = {
            "id": self.bot_user_id,
            "is_bot": True,
            "first_name": "Bridge Stand-in",
            "username": bot_username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }
        self.sent: list[JSONDict] = []
        self.updates: list[JSONDict] = []
        self.served: dict[int, int] = {}  # update_id -> times getUpdates returned it
        self.confirmed: dict[int, float] = {}  # update_id -> when an offset confirmed it
        self.webhook_url: str | None = None
        self.webhook_secret: str | None = None
        self.allowed_updates: list[str] | None = None
        self.files: dict[str, JSONDict] = {}
        self._paths: dict[str, str] = {}
        self._last_update_id = 100000000
        self._last_message_id = 0
        self._file_seq = 0
        self._closing = False
        self._new_update = asyncio.Event()
        self._poll_seq = 0  # the newest getUpdates; an older one still waiting gets a 409
        self.polls_waiting = 0  # getUpdates requests being held now (a test waits for one)
        self._methods: dict[str, Callable[[JSONDict], Any]] = {
            "getMe": lambda p: self.me,
            "setWebhook": self._m_set_webhook,
            "deleteWebhook": self._m_delete_webhook,
            "getWebhookInfo": self._m_webhook_info,
            "sendMessage": self._m_send_message,
            "sendPhoto": lambda p: self._m_send_file(p, "photo"),
            "sendDocument": lambda p: self._m_send_file(p, "document"),
            "getFile": self._m_get_file,
            "editMessageText": self._m_edit_message_text,
            "sendChatAction": lambda p: True,
            "setMyCommands": lambda p: True,
            "deleteMessage": lambda p: True,
            "answerCallbackQuery": self._m_answer_callback,
            "editMessageReplyMarkup": self._m_edit_markup,
        }
        # Inline keyboards: (chat_id, message_id) -> the markup a sent message carries now;
        # callback query ids issued by `callback_update` -> answered or not.
        self.markups: dict[tuple[int, int], JSONDict | None] = {}
        self.callbacks: dict[str, bool] = {}
        self._lower = {name.lower(): name for name in [*self._methods, "getUpdates"]}
        self.app.router.add_route("*", "/bot{token}/{method}", self._h_api)
        self.app.router.add_get("/file/bot{token}/{path:.+}", self._h_download)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    @property
    def file_base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/file/bot"

    # ------------------------------------------------------------------ test helpers
    def queue_update(self, update: JSONDict) -> None:
        """Queue an update for ``getUpdates`` (wakes pending long polls)."""
        self.updates.append(update)
        self._last_update_id = max(self._last_update_id, int(update.get("update_id", 0)))
        self._wake_polls()

    def _wake_polls(self) -> None:
        event, self._new_update = self._new_update, asyncio.Event()
        event.set()

    def add_file(self, file_id: str, content: bytes, file_path: str | None = None) -> None:
        """Register a file so ``getFile`` and the file download endpoint serve it."""
        self._file_seq += 1
        path = file_path or f"documents/file_{self._file_seq}"
        self.files[file_id] = {
            "file_id": file_id,
            "file_unique_id": f"U{self._file_seq:07d}",
            "file_size": len(content),
            "file_path": path,
            "content": content,
        }
        self._paths[path] = file_id

    def text_update(
        self,
        *,
        chat_id: int,
        text: str,
        first_name: str = "Ann",
        last_name: str | None = None,
        username: str | None = None,
        update_id: int | None = None,
        message_id: int | None = None,
        date: int | None = None,
    ) -> JSONDict:
        """A private-chat text message update (not queued; see ``queue_update``/``deliver``)."""
        if update_id is None:
            update_id = self._last_update_id + 1
        self._last_update_id = max(self._last_update_id, update_id)
        mid = self._next_message_id(message_id)
        person: JSONDict = {"first_name": first_name}
        if last_name is not None:
            person["last_name"] = last_name
        if username is not None:
            person["username"] = username
        return {
            "update_id": update_id,
            "message": {
                "message_id": mid,
                "from": {"id": chat_id, "is_bot": False, **person, "language_code": "en"},
                "chat": {"id": chat_id, **person, "type": "private"},
                "date": int(time.time()) if date is None else date,
                "text": text,
            },
        }

    def callback_update(self, *, chat_id: int, message_id: int, data: str,
                        first_name: str = "Ann", update_id: int | None = None) -> JSONDict:
        """A press on an inline button of message ``message_id`` (not queued); its query id
        is one ``answerCallbackQuery`` accepts once."""
        if update_id is None:
            update_id = self._last_update_id + 1
        self._last_update_id = max(self._last_update_id, update_id)
        query_id = f"{chat_id}{update_id}{len(self.callbacks)}"
        self.callbacks[query_id] = False
        person = {"id": chat_id, "is_bot": False, "first_name": first_name,
                  "language_code": "en"}
        return {"update_id": update_id, "callback_query": {
            "id": query_id, "from": person, "chat_instance": f"ci{chat_id}", "data": data,
            "message": {"message_id": message_id, "from": self.me, "date": int(time.time()),
                        "chat": {"id": chat_id, "first_name": first_name, "type": "private"},
                        "text": "(the message with the buttons)"}}}

    def edited_update(
        self,
        *,
        chat_id: int,
        message_id: int,
        text: str,
        first_name: str = "Ann",
        update_id: int | None = None,
        date: int | None = None,
        edit_date: int | None = None,
    ) -> JSONDict:
        """The customer edited message ``message_id`` to ``text`` (not queued)."""
        update = self.text_update(chat_id=chat_id, text=text, first_name=first_name,
                                  update_id=update_id, message_id=message_id, date=date)
        message = update.pop("message")
        message["edit_date"] = int(time.time()) if edit_date is None else edit_date
        update["edited_message"] = message
        return update

    async def deliver(
        self,
        update: JSONDict | bytes,
        session: aiohttp.ClientSession,
        *,
        secret: str | None = None,
        url: str | None = None,
    ) -> tuple[int, str]:
        """POST an update to the webhook (as Telegram does); returns (status, body)."""
        target = url or self.webhook_url
        if not target:
            raise RuntimeError("no webhook registered (setWebhook) and no url given")
        body = update if isinstance(update, bytes) else json.dumps(update).encode()
        secret = self.webhook_secret if secret is None else secret
        headers = (
            telegram_secret_headers(secret) if secret else {"Content-Type": "application/json"}
        )
        async with session.post(target, data=body, headers=headers) as resp:
            return resp.status, await resp.text()

    def _next_message_id(self, given: int | None = None) -> int:
        mid = self._last_message_id + 1 if given is None else given
        self._last_message_id = max(self._last_message_id, mid)
        return mid

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._closing = False
        await super().start(host, port)

    def _on_stop(self) -> None:
        self._closing = True
        self._new_update.set()

    # ------------------------------------------------------------------ HTTP handlers
    async def _h_api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = await read_params(request)
        if request.match_info["token"] != self.token:
            return self._error(method, params, request, 401, "Unauthorized")
        if self._failures or self._delays:
            injection = await self._apply_injections(method)
            if injection is not None:
                return self._injected(method, params, request, injection)
        name = method if method in self._methods else self._lower.get(method.lower(), "")
        try:
            if name == "getUpdates":
                result: Any = await self._get_updates(params)
            elif name:
                result = self._methods[name](params)
            else:
                raise TelegramAPIError(404, "Not Found")
        except TelegramAPIError as exc:
            return self._error(method, params, request, exc.status, exc.description)
        self._record(method, params, request)
        return web.json_response({"ok": True, "result": result})

    def _error(
        self, method: str, params: JSONDict, request: web.Request, status: int, description: str
    ) -> web.Response:
        self._record(method, params, request, status, False)
        body = {"ok": False, "error_code": status, "description": description}
        return web.json_response(body, status=status)

    def _injected(
        self, method: str, params: JSONDict, request: web.Request, inj: Injection
    ) -> web.Response:
        if inj.status != 429:
            if inj.error:
                description = inj.error
            elif inj.status == 403:
                description = "Forbidden: bot was blocked by the user"
            else:
                try:
                    description = HTTPStatus(inj.status).phrase
                except ValueError:
                    description = "Internal Server Error"
            return self._error(method, params, request, inj.status, description)
        self._record(method, params, request, 429, False)
        return web.json_response(
            {
                "ok": False,
                "error_code": 429,
                "description": inj.error or f"Too Many Requests: retry after {inj.retry_after}",
                "parameters": {"retry_after": inj.retry_after},
            },
            status=429,
        )

    async def _h_download(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.json_response(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401
            )
        file_id = self._paths.get(request.match_info["path"])
        if file_id is None:
            return web.json_response(
                {"ok": False, "error_code": 404, "description": "Not Found"}, status=404
            )
        return web.Response(
            body=self.files[file_id]["content"], content_type="application/octet-stream"
        )

    # ------------------------------------------------------------------ Bot API methods
    async def _get_updates(self, p: JSONDict) -> list[JSONDict]:
        """Like Telegram: an offset confirms (drops) every update below it; waits up to
        ``timeout`` seconds for one; a newer getUpdates ends a waiting one with a 409."""
        if self.webhook_url:
            raise TelegramAPIError(409, CONFLICT)
        self._poll_seq += 1
        mine = self._poll_seq
        self._wake_polls()  # an older poll still waiting learns it was superseded
        offset = int(p.get("offset") or 0)
        limit = min(max(int(p.get("limit") or 100), 1), 100)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + min(float(p.get("timeout") or 0), MAX_POLL_TIMEOUT)
        self.polls_waiting += 1
        try:
            return await self._hold_poll(mine, offset, limit, deadline)
        finally:
            self.polls_waiting -= 1

    async def _hold_poll(self, mine: int, offset: int, limit: int,
                         deadline: float) -> list[JSONDict]:
        loop = asyncio.get_running_loop()
        while True:
            if mine != self._poll_seq:
                raise TelegramAPIError(409, CONFLICT_TERMINATED)
            if self.webhook_url:
                raise TelegramAPIError(409, CONFLICT)
            if offset < 0:
                self._confirm(self.updates[:offset])
                self.updates = self.updates[offset:]
            elif offset:
                self._confirm([u for u in self.updates if int(u["update_id"]) < offset])
                self.updates = [u for u in self.updates if int(u["update_id"]) >= offset]
            remaining = deadline - loop.time()
            if self.updates or remaining <= 0 or self._closing:
                batch = self.updates[:limit]
                for u in batch:
                    self.served[int(u["update_id"])] = self.served.get(int(u["update_id"]), 0) + 1
                return batch
            try:
                await asyncio.wait_for(self._new_update.wait(), remaining)
            except TimeoutError:
                return []

    def _confirm(self, updates: list[JSONDict]) -> None:
        now = time.monotonic()
        for u in updates:
            self.confirmed.setdefault(int(u["update_id"]), now)

    def _m_set_webhook(self, p: JSONDict) -> bool:
        url = p.get("url") or ""
        if not url:
            return self._m_delete_webhook(p)
        self.webhook_url = url
        self.webhook_secret = p.get("secret_token") or None
        self._wake_polls()  # a waiting getUpdates now fails with a 409, as on Telegram
        allowed = p.get("allowed_updates")
        self.allowed_updates = json.loads(allowed) if isinstance(allowed, str) else allowed
        if p.get("drop_pending_updates") in _TRUE or p.get("drop_pending_updates") is True:
            self.updates.clear()
        return True

    def _m_delete_webhook(self, p: JSONDict) -> bool:
        self.webhook_url = self.webhook_secret = self.allowed_updates = None
        if p.get("drop_pending_updates") in _TRUE or p.get("drop_pending_updates") is True:
            self.updates.clear()
        return True

    def _m_webhook_info(self, p: JSONDict) -> JSONDict:
        info: JSONDict = {
            "url": self.webhook_url or "",
            "has_custom_certificate": False,
            "pending_update_count": len(self.updates),
        }
        if self.webhook_url:
            info["max_connections"] = 40
            if self.allowed_updates is not None:
                info["allowed_updates"] = self.allowed_updates
        return info

    def _message(self, p: JSONDict, method: str, **fields: Any) -> JSONDict:
        chat = _chat(p.get("chat_id"))
        msg: JSONDict = {
            "message_id": self._next_message_id(),
            "from": self.me,
            "chat": chat,
            "date": int(time.time()),
            **fields,
        }
        self.sent.append(
            {
                "method": method,
                "chat_id": chat["id"],
                "message_id": msg["message_id"],
                "text": fields.get("text", fields.get("caption")),
                "parse_mode": p.get("parse_mode"),
                "reply_parameters": p.get("reply_parameters"),
                "file_id": fields.get("file_id"),
            }
        )
        return msg

    def _m_send_message(self, p: JSONDict) -> JSONDict:
        if not p.get("chat_id"):
            raise TelegramAPIError(400, "Bad Request: chat_id is empty")
        text = p.get("text") or ""
        if not text.strip():
            raise TelegramAPIError(400, "Bad Request: message text is empty")
        if _visible_len(text, p.get("parse_mode")) > 4096:
            raise TelegramAPIError(400, "Bad Request: message is too long")
        markup = inline_keyboard(p.get("reply_markup"))
        msg = self._message(p, "sendMessage", text=text)
        self.sent[-1]["reply_markup"] = markup
        self.markups[(int(msg["chat"]["id"]), int(msg["message_id"]))] = markup
        if markup is not None:
            msg["reply_markup"] = markup
        return msg

    def _m_answer_callback(self, p: JSONDict) -> bool:
        query = str(p.get("callback_query_id") or "")
        if self.callbacks.get(query) is not False:  # unknown, or answered already
            raise TelegramAPIError(400, "Bad Request: query is too old and response timeout "
                                        "expired or query ID is invalid")
        if len(str(p.get("text") or "")) > 200:
            raise TelegramAPIError(400, "Bad Request: MESSAGE_TOO_LONG")
        self.callbacks[query] = True
        return True

    def _m_edit_markup(self, p: JSONDict) -> JSONDict:
        try:
            key = (int(p.get("chat_id") or 0), int(p.get("message_id") or 0))
        except (TypeError, ValueError) as exc:
            raise TelegramAPIError(400, "Bad Request: message to edit not found") from exc
        if key not in self.markups:
            raise TelegramAPIError(400, "Bad Request: message to edit not found")
        markup = inline_keyboard(p.get("reply_markup"))
        if markup == self.markups[key]:
            raise TelegramAPIError(400, "Bad Request: message is not modified: specified new "
                                        "message content and reply markup are exactly the "
                                        "same as a current content and reply markup of the "
                                        "message")
        self.markups[key] = markup
        now = int(time.time())
        return {"message_id": key[1], "from": self.me, "chat": _chat(key[0]), "date": now,
                "edit_date": now, "text": "(edited)"}

    def _m_send_file(self, p: JSONDict, kind: str) -> JSONDict:
        value = p.get(kind)
        if not value:
            raise TelegramAPIError(400, f"Bad Request: there is no {kind} in the request")
        if isinstance(value, dict):
            file_id = f"{kind[:2].upper()}AgACAgStandin{self._file_seq + 1:06d}"
            self.add_file(file_id, value["content"], f"{kind}s/{value.get('filename') or 'f'}")
            name, mime = value.get("filename"), value.get("content_type")
        else:
            file_id, name, mime = str(value), None, None
            if file_id not in self.files:  # a URL or an id we never issued: accept it
                if "://" in file_id:
                    file_id = f"URL{self._file_seq + 1:06d}"
                self.add_file(file_id, b"")
        entry = self.files[file_id]
        base = {
            "file_id": file_id,
            "file_unique_id": entry["file_unique_id"],
            "file_size": entry["file_size"],
        }
        fields: JSONDict = {"file_id": file_id}
        if kind == "photo":
            fields["photo"] = [{**base, "width": 1280, "height": 960}]
        else:
            fields["document"] = {
                **base,
                "file_name": name or "file",
                "mime_type": mime or "application/octet-stream",
            }
        if p.get("caption"):
            fields["caption"] = p["caption"]
        msg = self._message(p, "sendPhoto" if kind == "photo" else "sendDocument", **fields)
        del msg["file_id"]
        return msg

    def _m_get_file(self, p: JSONDict) -> JSONDict:
        entry = self.files.get(p.get("file_id") or "")
        if entry is None:
            raise TelegramAPIError(400, "Bad Request: invalid file_id")
        return {k: v for k, v in entry.items() if k != "content"}

    def _m_edit_message_text(self, p: JSONDict) -> JSONDict:
        if not p.get("text"):
            raise TelegramAPIError(400, "Bad Request: message text is empty")
        now = int(time.time())
        return {
            "message_id": int(p.get("message_id") or 0),
            "from": self.me,
            "chat": _chat(p.get("chat_id")),
            "date": now,
            "edit_date": now,
            "text": p["text"],
        }
