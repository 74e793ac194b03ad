"""Telegram replies: Slack mrkdwn to Telegram HTML with the agent's name, split at the limit,
and every Bot API error turned into a `SendError` with the right retry decision."""

from __future__ import annotations

import datetime as dtm
import html
from collections.abc import Awaitable
from typing import TypeVar

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

from connectors.base import SendError
from vocab.models import OutboundMessage
from vocab.mrkdwn import mrkdwn_to_telegram_html
from vocab.split import split_telegram_html
from vocab.telegram_text import utf16_len

MAX_TEXT = 4096  # characters after entity parsing (MessageLimit.MAX_TEXT_LENGTH)
MAX_CAPTION = 1024
T = TypeVar("T")


def _seconds(value: int | float | dtm.timedelta) -> float:
    return value.total_seconds() if isinstance(value, dtm.timedelta) else float(value)


def header(author_name: str) -> str:
    """Bots cannot change their name per message, so the agent's name leads the text."""
    return f"<b>{html.escape(author_name, quote=False)}</b>\n"


def render(msg: OutboundMessage) -> list[str]:
    """The reply as Telegram HTML parts, each within 4,096 visible characters."""
    if msg.mrkdwn:
        body = mrkdwn_to_telegram_html(msg.mrkdwn, msg.mentions)
    else:
        body = html.escape(msg.text, quote=False)
    head = header(msg.author_name)
    room = MAX_TEXT - utf16_len(msg.author_name) - 1
    parts = [head + part for part in split_telegram_html(body, room, utf16_len)]
    if not parts:
        raise SendError("the reply has no visible text", code="empty", retryable=False)
    return parts


def error(exc: TelegramError, chat_id: int) -> SendError:
    if isinstance(exc, RetryAfter):
        return SendError("Telegram asked to slow down", code="429", retryable=True,
                         retry_after=_seconds(exc.retry_after), gate=f"telegram:{chat_id}")
    if isinstance(exc, Forbidden):
        return SendError(f"Telegram refused: {exc.message}", code="403", retryable=False)
    if isinstance(exc, BadRequest | ChatMigrated | InvalidToken):
        return SendError(f"Telegram rejected the request: {exc.message}",
                         code=type(exc).__name__, retryable=False)
    if isinstance(exc, TimedOut | NetworkError):
        return SendError(f"Telegram unreachable: {exc.message}", code=type(exc).__name__,
                         retryable=True)
    return SendError(f"Telegram error: {exc.message}", code=type(exc).__name__, retryable=True)


async def call(request: Awaitable[T], chat_id: int) -> T:
    """Await one Bot API call, mapping its errors."""
    try:
        return await request
    except TelegramError as exc:
        raise error(exc, chat_id) from exc
