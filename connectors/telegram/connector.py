"""Telegram customer connector (python-telegram-bot's async `Bot`; webhook or polling mode)."""

from __future__ import annotations

import hmac
import logging
import re
import secrets
from collections.abc import Sequence
from typing import Any, ClassVar

from aiohttp import web
from pydantic import BaseModel
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, InputFile
from telegram.constants import ParseMode
from telegram.error import BadRequest, TelegramError
from telegram.request import HTTPXRequest

from connectors.base import (
    Connector,
    ConnectorContext,
    SendError,
    Unauthorized,
    Unsupported,
    foreign_url,
    too_large,
)
from connectors.telegram import outbound
from connectors.telegram.parse import HANDLED_UPDATES, NAME, parse_update, parse_update_data
from connectors.telegram.polling import TelegramPoller
from connectors.telegram.settings import TelegramSettings
from vocab.models import Attachment, InboundMessage, OutboundFile, OutboundMessage, SendReceipt
from vocab.untrusted import HostRule

log = logging.getLogger(__name__)
FILE_HOST = "api.telegram.org"  # Telegram serves files from its API host
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
PHOTO_MAX = 10 * 1048576  # larger images go as documents (sendPhoto's limit)
DOWNLOAD_MAX = 20 * 1048576  # the Bot API serves files up to 20 MB (FILESIZE_DOWNLOAD)
START_PAYLOAD = re.compile(r"[A-Za-z0-9_-]{1,64}")  # what a t.me ?start= parameter may hold


class TelegramConnector(Connector):
    name: ClassVar[str] = NAME
    Settings: ClassVar[type[BaseModel]] = TelegramSettings

    def __init__(self, settings: BaseModel, ctx: ConnectorContext) -> None:
        super().__init__(settings, ctx)
        assert isinstance(settings, TelegramSettings)
        self.settings = settings
        timeout = settings.request_timeout
        request = HTTPXRequest(connection_pool_size=settings.connection_pool_size,
                               read_timeout=timeout, write_timeout=timeout,
                               connect_timeout=timeout, pool_timeout=timeout)
        # One connection for getUpdates; each call's read timeout is poll_timeout + timeout.
        updates_request = HTTPXRequest(connection_pool_size=1, read_timeout=timeout,
                                       write_timeout=timeout, connect_timeout=timeout,
                                       pool_timeout=timeout)
        self.bot = Bot(settings.bot_token, base_url=settings.api_base_url,
                       base_file_url=settings.file_base_url, request=request,
                       get_updates_request=updates_request)
        self._file_hosts = HostRule.of([FILE_HOST], [settings.file_base_url])
        # Polling mode keeps the webhook route, still verified: without a configured secret it
        # checks against a random one, so it refuses every request rather than none.
        self._secret = (settings.webhook_secret or secrets.token_urlsafe(32)).encode()
        self.poller: TelegramPoller | None = None
        if settings.mode == "polling":
            self.poller = TelegramPoller(
                self.bot, updates_request, parse=self._stamped, ingest=ctx.ingest,
                state=ctx.state, poll_timeout=settings.poll_timeout, request_timeout=timeout)

    async def start(self) -> None:
        await self.bot.initialize()  # getMe: fails fast on a wrong token
        if self.poller is not None:
            # One poller per bot in the whole deployment: with several instances on one
            # database it runs where the "telegram-polling" lease is held, and moves on death.
            await self.ctx.run_once("telegram-polling", self.poller.start, self.poller.stop)
        elif self.settings.register_webhook:
            await self.bot.set_webhook(
                url=self.webhook_url,
                secret_token=self.settings.webhook_secret,
                allowed_updates=list(HANDLED_UPDATES),
            )
            log.info("telegram webhook registered at %s", self.webhook_url)

    async def stop(self) -> None:
        if self.poller is not None:
            await self.poller.stop()  # a long poll ends at once; a commit under way finishes
        await self.bot.shutdown()

    @property
    def bot_username(self) -> str | None:
        """The bot's @username, as getMe told `start` (None before it)."""
        try:
            return self.bot.username or None
        except RuntimeError:  # not initialized: getMe has not answered yet
            return None

    def handoff_invite(self, channel: str, code: str) -> str | None:
        """A deep link that opens the chat with the bot and sends "/start <code>"."""
        username = self.bot_username
        if channel != self.name or username is None or not START_PAYLOAD.fullmatch(code):
            return None
        return f"To continue on Telegram, open https://t.me/{username}?start={code}"

    content_types = ("application/json",)

    def precheck(self, request: web.Request) -> None:
        """The secret is a header: checked before the body is read."""
        given = request.headers.get(SECRET_HEADER, "").encode("utf-8", "replace")
        if not hmac.compare_digest(given, self._secret):
            raise Unauthorized("missing or wrong X-Telegram-Bot-Api-Secret-Token")

    async def verify(self, request: web.Request, body: bytes) -> None:
        self.precheck(request)

    def parse(self, body: bytes) -> list[InboundMessage]:
        return self._inbox(parse_update(body))

    def _stamped(self, update: Any) -> list[InboundMessage]:
        return self._inbox(parse_update_data(update))

    def _inbox(self, items: list[InboundMessage]) -> list[InboundMessage]:
        """The bot the customer wrote to (routing rules' `inboxes`), once getMe named it."""
        username = self.bot_username
        return [i.model_copy(update={"inbox": username}) for i in items] if username else items

    renders_choices: ClassVar[bool] = True

    async def send(self, msg: OutboundMessage) -> SendReceipt:
        chat_id = int(msg.address)
        ids: list[str] = []
        parts = outbound.render(msg)
        for n, part in enumerate(parts):
            # Choices: an inline keyboard (one row) under the last part.
            markup = (keyboard(msg) if n == len(parts) - 1 and msg.choices is not None
                      else None)
            sent = await outbound.call(self.bot.send_message(
                chat_id=chat_id, text=part, parse_mode=ParseMode.HTML, reply_markup=markup),
                chat_id)
            ids.append(str(sent.message_id))
        return SendReceipt(platform_message_ids=tuple(ids))

    async def acknowledge_choice(self, item: InboundMessage, text: str, accepted: bool) -> None:
        """answerCallbackQuery (the client's spinner stops, `text` shows); an accepted pick
        also takes the keyboard off its message, so it cannot be pressed again."""
        if item.choice_ack is None:
            return
        try:
            await self.bot.answer_callback_query(item.choice_ack, text=text[:200])
            if accepted and item.platform_ref is not None:
                await self.bot.edit_message_reply_markup(
                    chat_id=int(item.address), message_id=int(item.platform_ref),
                    reply_markup=None)
        except BadRequest as exc:
            if "not modified" not in exc.message.lower():
                raise outbound.error(exc, int(item.address)) from exc
        except TelegramError as exc:
            raise outbound.error(exc, int(item.address)) from exc

    async def send_file(self, msg: OutboundMessage, file: OutboundFile) -> SendReceipt:
        if len(file.data) > self.settings.max_upload_bytes:
            raise Unsupported(f"Telegram bots cannot send files over "
                              f"{self.settings.max_upload_bytes / 1048576:g} MB")
        chat_id = int(msg.address)
        caption = outbound.header(msg.author_name).rstrip("\n")
        upload = InputFile(file.data, filename=file.filename)
        if file.is_image and len(file.data) <= PHOTO_MAX:
            sent = await outbound.call(self.bot.send_photo(
                chat_id=chat_id, photo=upload, caption=caption, parse_mode=ParseMode.HTML),
                chat_id)
        else:
            sent = await outbound.call(self.bot.send_document(
                chat_id=chat_id, document=upload, caption=caption,
                parse_mode=ParseMode.HTML), chat_id)
        return SendReceipt(platform_message_ids=(str(sent.message_id),))

    async def fetch_file(self, attachment: Attachment, max_bytes: int) -> bytes:
        if not attachment.platform_file_id:
            raise SendError("the file has no Telegram file_id", code="no_file",
                            retryable=False)
        limit = min(max_bytes, DOWNLOAD_MAX)
        if attachment.size is not None and attachment.size > limit:
            raise too_large(attachment.size, limit)
        file = await outbound.call(self.bot.get_file(attachment.platform_file_id), 0)
        # PTB downloads whatever file_path says (a local path is read from disk): only a file
        # under the configured file URL (Telegram's file host by default) is fetched.
        path = str(file.file_path or "")
        if not (path.startswith(self.settings.file_base_url) and self._file_hosts.allows(path)):
            raise foreign_url(path, "Telegram file download")
        if file.file_size is not None and file.file_size > limit:
            raise too_large(file.file_size, limit)
        try:
            data = bytes(await file.download_as_bytearray())
        except TelegramError as exc:
            raise outbound.error(exc, 0) from exc
        if len(data) > limit:
            raise too_large(len(data), limit)
        return data

    async def edit(self, msg: OutboundMessage, platform_ids: Sequence[str]) -> None:
        chat_id = int(msg.address)
        parts = outbound.render(msg)
        if len(parts) != len(platform_ids):
            raise Unsupported("Telegram can only edit a reply into as many messages as it was "
                              "sent in")
        for part, message_id in zip(parts, platform_ids, strict=True):
            try:
                await self.bot.edit_message_text(text=part, chat_id=chat_id,
                                                 message_id=int(message_id),
                                                 parse_mode=ParseMode.HTML)
            except BadRequest as exc:
                if "not modified" in exc.message.lower():
                    continue  # already says this
                if "can't be edited" in exc.message.lower():
                    raise Unsupported("Telegram no longer allows editing this message") from exc
                raise outbound.error(exc, chat_id) from exc
            except TelegramError as exc:
                raise outbound.error(exc, chat_id) from exc

    async def delete(self, address: str, platform_ids: Sequence[str]) -> None:
        chat_id = int(address)
        for message_id in platform_ids:
            try:
                await self.bot.delete_message(chat_id=chat_id, message_id=int(message_id))
            except BadRequest as exc:
                text = exc.message.lower()
                if "not found" in text:
                    continue  # already gone
                if "can't be deleted" in text:
                    raise Unsupported("Telegram lets bots delete messages only within 48 "
                                      "hours") from exc
                raise outbound.error(exc, chat_id) from exc
            except TelegramError as exc:
                raise outbound.error(exc, chat_id) from exc



def keyboard(msg: OutboundMessage) -> InlineKeyboardMarkup | None:
    """The choices as one row of inline buttons (callback_data: at most 64 bytes)."""
    if msg.choices is None:
        return None
    row = [InlineKeyboardButton(text=c.title[:64], callback_data=c.id)
           for c in msg.choices.items if 0 < len(c.id.encode()) <= 64]
    return InlineKeyboardMarkup([row]) if row else None
