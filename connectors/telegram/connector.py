"""Telegram customer connector (python-telegram-bot's async `Bot`, webhook mode)."""

from __future__ import annotations

import datetime as dtm
import hmac
import html
import logging
from typing import ClassVar

from aiohttp import web
from pydantic import BaseModel
from telegram import Bot
from telegram.constants import ParseMode
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.request import HTTPXRequest

from bridge.models import InboundMessage, OutboundMessage, SendReceipt
from connectors.base import Connector, ConnectorContext, SendError, Unauthorized
from connectors.telegram.parse import NAME, parse_update
from connectors.telegram.settings import TelegramSettings

log = logging.getLogger(__name__)
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_TEXT = 4096


def _seconds(value: int | float | dtm.timedelta) -> float:
    return value.total_seconds() if isinstance(value, dtm.timedelta) else float(value)


def split_text(text: str, limit: int) -> list[str]:
    """Split at line or word boundaries so each part fits `limit` characters."""
    parts: list[str] = []
    while len(text) > limit:
        cut = text.rfind("\n", 0, limit + 1)
        if cut <= 0:
            cut = text.rfind(" ", 0, limit + 1)
        if cut <= 0:
            cut = limit
        parts.append(text[:cut].rstrip())
        text = text[cut:].lstrip()
    if text or not parts:
        parts.append(text)
    return parts


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
        self.bot = Bot(settings.bot_token, base_url=settings.api_base_url,
                       base_file_url=settings.file_base_url, request=request,
                       get_updates_request=HTTPXRequest())
        self._secret = settings.webhook_secret.encode()

    async def start(self) -> None:
        await self.bot.initialize()  # getMe: fails fast on a wrong token
        if self.settings.register_webhook:
            await self.bot.set_webhook(
                url=self.webhook_url,
                secret_token=self.settings.webhook_secret,
                allowed_updates=["message"],
            )
            log.info("telegram webhook registered at %s", self.webhook_url)

    async def stop(self) -> None:
        await self.bot.shutdown()

    async def verify(self, request: web.Request, body: bytes) -> None:
        given = request.headers.get(SECRET_HEADER, "").encode()
        if not hmac.compare_digest(given, self._secret):
            raise Unauthorized("missing or wrong X-Telegram-Bot-Api-Secret-Token")

    def parse(self, body: bytes) -> list[InboundMessage]:
        return parse_update(body)

    async def send(self, msg: OutboundMessage) -> SendReceipt:
        chat_id = int(msg.address)
        gate = f"telegram:{chat_id}"
        ids: list[str] = []
        header = f"<b>{html.escape(msg.author_name, quote=False)}</b>\n"
        for part in split_text(msg.text, MAX_TEXT - len(header)):
            try:
                sent = await self.bot.send_message(
                    chat_id=chat_id, text=header + html.escape(part, quote=False),
                    parse_mode=ParseMode.HTML)
            except RetryAfter as exc:
                raise SendError("Telegram asked to slow down", code="429", retryable=True,
                                retry_after=_seconds(exc.retry_after), gate=gate) from exc
            except Forbidden as exc:
                raise SendError(f"Telegram refused: {exc.message}", code="403",
                                retryable=False) from exc
            except (BadRequest, ChatMigrated, InvalidToken) as exc:
                raise SendError(f"Telegram rejected the message: {exc.message}",
                                code=type(exc).__name__, retryable=False) from exc
            except (TimedOut, NetworkError) as exc:
                raise SendError(f"Telegram unreachable: {exc.message}",
                                code=type(exc).__name__, retryable=True) from exc
            except TelegramError as exc:
                raise SendError(f"Telegram error: {exc.message}", code=type(exc).__name__,
                                retryable=True) from exc
            ids.append(str(sent.message_id))
        return SendReceipt(platform_message_ids=tuple(ids))
