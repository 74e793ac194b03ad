"""How the Telegram stand-in checks a `reply_markup` (inline keyboards), as the Bot API does."""

from __future__ import annotations

import json
from typing import Any

from bridge.standins.base import JSONDict


class TelegramAPIError(Exception):
    """Raised by a method implementation to answer ``{"ok": false, ...}``."""

    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.description = description


def inline_keyboard(value: Any) -> JSONDict | None:
    """A reply_markup as Telegram checks an inline keyboard: every button has a text and
    callback_data of 1-64 bytes (or a url); an empty keyboard is no keyboard."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise TelegramAPIError(400, "Bad Request: can't parse reply keyboard markup "
                                        "JSON object") from exc
    if not isinstance(value, dict):
        raise TelegramAPIError(400, "Bad Request: can't parse reply keyboard markup")
    rows = value.get("inline_keyboard")
    if rows is None:
        return value  # another keyboard kind: not checked here
    if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
        raise TelegramAPIError(400, "Bad Request: field \"inline_keyboard\" must be an Array")
    for row in rows:
        for button in row:
            if not isinstance(button, dict) or not button.get("text"):
                raise TelegramAPIError(400, "Bad Request: text buttons are unallowed in the "
                                            "inline keyboard")
            data = button.get("callback_data")
            if "url" not in button and (not isinstance(data, str)
                                        or not 1 <= len(data.encode()) <= 64):
                raise TelegramAPIError(400, "Bad Request: BUTTON_DATA_INVALID")
    return value if any(rows) else None
