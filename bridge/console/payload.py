"""Reading Slack's interaction payloads (buttons, pickers, reactions) without trusting their
shape: a field that is missing, of another type or absurdly long reads as "" (so nothing
matches it), never an exception (which would answer Slack with a 500 and have it redeliver)."""

from __future__ import annotations

from typing import Any

MAX_FIELD = 255  # far longer than any Slack id or ts; longer reads as ""


def field(obj: object, *keys: str) -> str:
    """`obj[keys[0]][keys[1]]…` when every step is a dict and the end a short string, else ""."""
    for key in keys:
        if not isinstance(obj, dict):
            return ""
        obj = obj.get(key)
    return obj if isinstance(obj, str) and len(obj) <= MAX_FIELD else ""


def where(body: dict[str, Any]) -> tuple[str, str, str]:
    """A button's or picker's (channel, thread ts, user): the thread of the message it is on."""
    return (field(body, "channel", "id"),
            field(body, "message", "thread_ts") or field(body, "message", "ts"),
            field(body, "user", "id"))
