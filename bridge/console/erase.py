"""A customer was erased (issue 28): empty their Slack threads.  For each `slack_erase`
outbox row the bridge deletes its own posts and files in the thread (`chat.delete`,
`files.delete`: a bot can delete only its own) and rewrites the thread's parent to one line.
Agents' own replies stay; `bridge customer erase` listed them for a workspace admin.
Every step may repeat (a retry after a rate limit starts over and finds less to do)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from bridge.console.slack import SlackConsole
from bridge.delivery_base import Handlers, done
from connectors.base import SendError
from storage.base import OutboxResult
from vocab.models import OutboxItem, OutboxKind

GONE = frozenset({"message_not_found", "thread_not_found", "file_not_found",
                  "file_deleted"})
NOT_OURS = frozenset({"cant_delete_message", "cant_delete_file"})
MAX_PAGES = 50


def erased_line(erased_at: float) -> str:
    day = datetime.fromtimestamp(erased_at, UTC).strftime("%Y-%m-%d")
    return f"erased on {day} at the customer's request"


class SlackEraser:
    def __init__(self, console: SlackConsole) -> None:
        self.console = console

    def handlers(self) -> Handlers:
        return {OutboxKind.SLACK_ERASE: self._erase}

    async def _call(self, method: str, where: str, **args: Any) -> dict[str, Any] | None:
        """One Web API call; None where Slack says the thing is gone or not ours."""
        client = self.console.client
        calls: dict[str, Callable[..., Awaitable[Any]]] = {
            "conversations.replies": client.conversations_replies,
            "chat.delete": client.chat_delete, "files.delete": client.files_delete,
            "chat.update": client.chat_update}
        try:
            resp = await calls[method](**args)
        except Exception as exc:
            error = self.console._error(exc, where)
            if error.code in GONE or error.code in NOT_OURS:
                return None
            raise error from exc
        return dict(resp.data) if isinstance(resp.data, dict) else {}

    async def _thread(self, channel: str, thread_ts: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        cursor = ""
        for _ in range(MAX_PAGES):
            args: dict[str, Any] = {"channel": channel, "ts": thread_ts, "limit": 200}
            if cursor:
                args["cursor"] = cursor
            page = await self._call("conversations.replies", channel, **args)
            if page is None:
                break
            found += list(page.get("messages") or [])
            cursor = str((page.get("response_metadata") or {}).get("next_cursor") or "")
            if not page.get("has_more") or not cursor:
                break
        return found

    async def _erase(self, item: OutboxItem) -> OutboxResult:
        try:
            data = json.loads(item.payload)
            channel, thread_ts = str(data["channel"]), str(data["thread_ts"])
            erased_at = float(data["erased_at"])
        except (ValueError, KeyError, TypeError) as exc:
            raise SendError(f"slack_erase row {item.id}: bad payload", code="bad_payload",
                            retryable=False) from exc
        workspace = self.console.workspace
        ours = {workspace.bot_user_id, workspace.bot_id} if workspace else set()
        for message in await self._thread(channel, thread_ts):
            ts = str(message.get("ts") or "")
            if ts == thread_ts or not ({message.get("user"), message.get("bot_id")} & ours):
                continue
            for file in message.get("files") or []:
                await self._call("files.delete", channel, file=str(file.get("id")))
            await self._call("chat.delete", channel, channel=channel, ts=ts)
        await self._call("chat.update", channel, channel=channel, ts=thread_ts,
                         text=erased_line(erased_at), blocks=[])
        return done(item)
