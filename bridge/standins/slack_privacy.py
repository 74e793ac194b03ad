"""What the Slack stand-in serves for erasures and exports (issue 28): `chat.delete` and
`files.delete` refuse what Slack refuses a bot token (anything not the bot's own), and
`conversations.open` opens a direct message with a user."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

JSONDict = dict[str, Any]

SCOPES: dict[str, tuple[str, ...]] = {
    "chat.delete": ("chat:write",),
    "files.delete": ("files:write",),
    "conversations.open": ("im:write", "mpim:write", "channels:manage", "groups:write"),
}


class Holder(Protocol):
    messages: list[JSONDict]
    files: dict[str, JSONDict]
    users: dict[str, JSONDict]
    bot_user_id: str
    _by_key: dict[tuple[str, str], JSONDict]


def methods(standin: Holder) -> dict[str, Callable[[JSONDict], JSONDict]]:
    def delete(p: JSONDict) -> JSONDict:
        channel, ts = p.get("channel") or "", p.get("ts") or ""
        stored = standin._by_key.get((channel, ts))
        if stored is None:
            return {"ok": False, "error": "message_not_found"}
        if stored.get("user") != standin.bot_user_id:
            return {"ok": False, "error": "cant_delete_message"}  # a bot deletes only its own
        standin.messages.remove(stored)
        del standin._by_key[(channel, ts)]
        return {"ok": True, "channel": channel, "ts": ts}

    def delete_file(p: JSONDict) -> JSONDict:
        entry = standin.files.get(p.get("file") or "")
        if entry is None:
            return {"ok": False, "error": "file_not_found"}
        if not entry.get("completed"):  # uploaded by a person, not by the bot
            return {"ok": False, "error": "cant_delete_file"}
        del standin.files[entry["id"]]
        for message in standin.messages:
            message["files"] = [f for f in message.get("files") or []
                                if f.get("id") != entry["id"]] or None
        return {"ok": True}

    def open_dm(p: JSONDict) -> JSONDict:
        user = str(p.get("users") or "")
        if "," in user or user not in standin.users:
            return {"ok": False, "error": "user_not_found"}
        return {"ok": True, "channel": {"id": "D" + user.removeprefix("U")}}

    return {"chat.delete": delete, "files.delete": delete_file, "conversations.open": open_dm}


def human_message(standin: Holder, channel: str, user: str, text: str, ts: str,
                  thread_ts: str | None) -> None:
    """A message a person wrote (an agent's reply): kept so listings show it."""
    stored: JSONDict = {"channel": channel, "thread_ts": thread_ts, "type": "message",
                        "user": user, "text": text, "ts": ts, "blocks": None,
                        "metadata": None}
    standin.messages.append(stored)
    standin._by_key[(channel, ts)] = stored
