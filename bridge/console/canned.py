"""Canned replies in Slack (issue 22): `!canned`, `!field`, the ephemeral preview with *Send*,
*Edit* and *Cancel*, and the *Canned reply…* and *Save as canned reply* message shortcuts.

Nothing reaches the customer before *Send*: the preview is kept in the store and claimed once
by the click (any instance may get it); *Send* posts the text in the thread under the agent's
name and picture, then stores that post as the agent's reply (so it counts as their response,
takes the conversation on `assign_on_first_reply`, and its delivery receipt lands on it).
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol

from bridge.canned import (
    FIELD,
    MAX_FIELD,
    NAME,
    CannedLibrary,
    CannedReply,
    Context,
    check_body,
)
from bridge.console.canned_views import (
    CANCEL_ACTION,
    EDIT_ACTION,
    EDIT_VIEW,
    PICK_VIEW,
    SAVE_VIEW,
    SEARCH_ACTION,
    SEND_ACTION,
    edit_view,
    pick_view,
    preview_blocks,
    save_view,
    submitted,
)
from bridge.console.payload import field
from bridge.console.slack import SlackConsole
from bridge.templates import TemplateError
from connectors.base import SendError
from storage.base import Preview
from vocab.models import (
    AgentReply,
    Attachment,
    Conversation,
    ConversationId,
    Direction,
    IngestResult,
)
from vocab.mrkdwn import mrkdwn_escape

log = logging.getLogger(__name__)
Ack = Callable[..., Awaitable[None]]
Allowed = Callable[[str, str | None], Awaitable[bool]]
PICK_SHORTCUT, SAVE_SHORTCUT = "canned_reply", "save_canned_reply"
CANNED_EVENT = "bridge_canned"  # metadata of a canned reply's post: who sent it
NAMES = ("canned", "field")


class CannedActions(Protocol):
    async def ingest_reply(self, reply: AgentReply) -> IngestResult: ...

    async def conversation_by_thread(self, channel: str,
                                     thread_ts: str) -> Conversation | None: ...


class CannedCommands:
    def __init__(self, console: SlackConsole, actions: CannedActions, library: CannedLibrary,
                 allowed: Allowed) -> None:
        self.console = console
        self.actions = actions
        self.library = library
        self.store = library.store
        self._allowed = allowed

    def register(self, bolt: Any) -> None:
        bolt.action(SEND_ACTION)(self._on_send)
        bolt.action(EDIT_ACTION)(self._on_edit)
        bolt.action(CANCEL_ACTION)(self._on_cancel)
        bolt.action(SEARCH_ACTION)(self._on_search)
        bolt.view(EDIT_VIEW)(self._on_edit_submit)
        bolt.view(PICK_VIEW)(self._on_pick_submit)
        bolt.view(SAVE_VIEW)(self._on_save_submit)
        bolt.shortcut(PICK_SHORTCUT)(self._on_pick_shortcut)
        bolt.shortcut(SAVE_SHORTCUT)(self._on_save_shortcut)

    async def _say(self, user: str, text: str, thread_ts: str | None,
                   channel: str | None = None) -> None:
        if channel:
            self.console.answering.set(channel)
        await self.console.ephemeral(user, text, thread_ts)

    # -- thread commands ---------------------------------------------------------------------
    async def command(self, reply: AgentReply, name: str, rest: str) -> None:
        user, thread = reply.slack_user, reply.thread_ts
        conv = await self.actions.conversation_by_thread(reply.slack_channel, thread)
        if conv is None:
            await self._say(user, "This thread is not a customer conversation.", None)
            return
        if not await self._allowed(user, thread):
            return
        team = self.console.channel_team(reply.slack_channel)
        if name == "field":
            await self._field(reply, conv, rest)
            return
        word, _, more = rest.partition(" ")
        word, more = word.lower(), more.strip()
        if not word:
            await self._list(user, team, thread)
        elif word == "save":
            await self._save_previous(reply, conv, team, more)
        elif word == "delete":
            await self._delete(user, team, thread, more)
        else:
            await self.preview(reply.slack_channel, thread, user, conv, word, more)

    async def _list(self, user: str, team: str | None, thread: str) -> None:
        replies = await self.library.available(user, team)
        prefix = self.console.settings.command_prefix
        if not replies:
            await self._say(user, "No canned replies yet: save one with "
                            f"`{prefix}canned save &lt;name&gt;` after a reply of yours.", thread)
            return
        lines = [f"• `{r.name}`: {mrkdwn_escape(r.title)} ({r.where})" for r in replies[:50]]
        more = f"\n…and {len(replies) - 50} more" if len(replies) > 50 else ""
        await self._say(user, f"Canned replies you can use here (`{prefix}canned &lt;name&gt;`):\n"
                        + "\n".join(lines) + more, thread)

    async def _save_previous(self, reply: AgentReply, conv: Conversation, team: str | None,
                             rest: str) -> None:
        words = rest.split()
        shared = "--team" in words
        names = [w for w in words if w != "--team"]
        user, thread = reply.slack_user, reply.thread_ts
        prefix = self.console.settings.command_prefix
        if len(names) != 1 or not NAME.fullmatch(names[0].lower()):
            await self._say(user, f"Usage: `{prefix}canned save &lt;name&gt; [--team]` (a name of "
                            "lowercase letters, digits, `_`, `-`).", thread)
            return
        messages = await self.agent_replies(conv.id)
        mine = [m for m in messages if m[0] == user]
        if not mine:
            await self._say(user, "You have not replied in this thread yet: nothing to save.",
                            thread)
            return
        await self._store_reply(user, team if shared else None, names[0].lower(), "",
                                mine[-1][1], thread)

    async def agent_replies(self, conversation_id: ConversationId) -> list[tuple[str, str]]:
        """(agent, text) of the agents' replies in a conversation, oldest first."""
        found = await self.store.messages(conversation_id)
        return [(m.author_slack_user, m.text) for m in found
                if m.author_slack_user and m.direction is Direction.OUTBOUND and m.text.strip()]

    async def _store_reply(self, user: str, team: str | None, name: str, title: str,
                           body: str, thread: str | None) -> str | None:
        problem = check_body(body)
        if problem is not None:
            await self._say(user, f"Not saved: {mrkdwn_escape(problem)}.", thread)
            return problem
        outcome = await self.library.save(user, team, name, title, body)
        if outcome == "taken":
            await self._say(user, f"Not saved: the team's `{name}` was saved by someone else; "
                            "pick another name.", thread)
            return "taken"
        whose = f"team {team}'s" if team else "your"
        done = "replaced" if outcome == "replaced" else "saved"
        await self._say(user, f"`{name}` {done} as {whose} canned reply.", thread)
        return None

    async def _delete(self, user: str, team: str | None, thread: str, name: str) -> None:
        gone = await self.library.delete(user, team, name.lower())
        if gone is None:
            await self._say(user, f"You have no saved canned reply `{_shown(name)}` to delete "
                            "(replies in files are changed in the files).", thread)
            return
        await self._say(user, f"`{name}` deleted.", thread)

    async def _field(self, reply: AgentReply, conv: Conversation, rest: str) -> None:
        key, _, value = rest.partition(" ")
        key, value = key.lower(), value.strip()
        user, thread = reply.slack_user, reply.thread_ts
        if not key:
            fields = await self.store.customer_fields(conv.customer_id)
            shown = "\n".join(f"• `{k}`: {mrkdwn_escape(v)}" for k, v in fields.items())
            await self._say(user, f"The customer's fields:\n{shown}" if fields else
                            "The customer has no fields yet.", thread)
            return
        if not FIELD.fullmatch(key) or not value or len(value) > MAX_FIELD:
            prefix = self.console.settings.command_prefix
            await self._say(user, f"Usage: `{prefix}field &lt;key&gt; &lt;value&gt;` (a key "
                            "of lowercase letters, digits and `_`; a value up to "
                            f"{MAX_FIELD} characters).", thread)
            return
        await self.store.set_customer_field(conv.customer_id, key, value, user,
                                            self.library.clock())
        await self._say(user, f"Field `{key}` set; canned replies read it as "
                        f"`{{{{ customer.fields.{key} }}}}`.", thread)

    # -- the preview -------------------------------------------------------------------------
    async def context(self, conv: Conversation, user: str, channel: str,
                      extra: str = "") -> Context:
        agent = await self.console.agent(user)
        card = await self.store.customer_card(conv.customer_id)
        return Context(customer_name=card.display_name if card is not None else "",
                       fields=await self.store.customer_fields(conv.customer_id),
                       agent_name=agent.name, conversation_id=int(conv.id),
                       team=self.console.channel_team(channel), extra=extra)

    async def preview(self, channel: str, thread: str, user: str, conv: Conversation,
                      name: str, extra: str = "") -> None:
        """Show `name` filled, only to `user`, with Send / Edit / Cancel."""
        team = self.console.channel_team(channel)
        reply = await self.library.find(user, team, name)
        if reply is None:
            prefix = self.console.settings.command_prefix
            await self._say(user, f"No canned reply `{_shown(name)}` here; `{prefix}canned` lists "
                            "them. Nothing was sent to the customer.", thread, channel)
            return
        try:
            text = self.library.fill(reply, await self.context(conv, user, channel, extra))
        except TemplateError as exc:
            await self._say(user, f"Canned reply `{reply.name}` cannot be filled: "
                            f"{mrkdwn_escape(str(exc))}. Set what is missing (`!field &lt;key&gt; "
                            "&lt;value&gt;`) or give the placeholder a `default(...)`. Nothing was "
                            "sent to the customer.", thread, channel)
            return
        token = secrets.token_urlsafe(18)
        await self.store.put_preview(Preview(
            token=token, conversation_id=conv.id, slack_channel=channel, thread_ts=thread,
            slack_user=user, name=reply.name, text=text,
            attachments=json.dumps([str(p) for p in reply.attachments]), state="ready",
            post_ts=None), self.library.clock())
        self.console.answering.set(channel)
        await self.console.ephemeral(user, f"Canned reply {reply.name} (only you see this)",
                                     thread, blocks=preview_blocks(reply, text, token))

    # -- Send, Edit, Cancel ------------------------------------------------------------------
    async def send(self, token: str, user: str, text: str | None = None) -> bool:
        """Send a preview as `user`'s reply, once; False when it was not theirs to send."""
        now = self.library.clock()
        preview = await self.store.claim_preview(token, user, text, now)
        if preview is None:
            await self._say(user, "That canned reply was already sent or cancelled.", None)
            return False
        try:
            agent = await self.console.agent(user)
            ts = await self.console.post_as(
                agent, preview.text, preview.thread_ts, channel=preview.slack_channel,
                metadata={"event_type": CANNED_EVENT,
                          "event_payload": {"agent": user, "name": preview.name}})
            files = await self._share(preview, agent.name)
        except (SendError, OSError) as exc:
            await self.store.finish_preview(token, "ready", None, self.library.clock())
            why = exc.describe() if isinstance(exc, SendError) else f"a file: {exc}"
            await self._say(user, f"Not sent: {mrkdwn_escape(why)}. Try *Send* again.",
                            preview.thread_ts, preview.slack_channel)
            return False
        result = await self.actions.ingest_reply(AgentReply(
            slack_channel=preview.slack_channel, slack_ts=ts, thread_ts=preview.thread_ts,
            slack_user=user, text=preview.text, is_note=False, files=files))
        await self.store.finish_preview(token, "sent", ts, self.library.clock())
        if result.conversation_id is None:
            await self._say(user, "The conversation moved away from this thread: the reply "
                            "was not sent.", preview.thread_ts, preview.slack_channel)
        return True

    async def _share(self, preview: Preview, agent: str) -> tuple[Attachment, ...]:
        """A reply's files, uploaded into the thread and sent from there like any file an
        agent attaches."""
        shared: list[Attachment] = []
        for path in json.loads(preview.attachments):
            data = await asyncio.to_thread(Path(path).read_bytes)
            name = Path(path).name
            found = await self.console.share(preview.thread_ts, name, data,
                                             f"{agent} sent {name}",
                                             channel=preview.slack_channel)
            url = found.get("url_private_download") or found.get("url_private")
            if not isinstance(url, str) or not url:
                raise SendError(f"Slack gave no download address for {name}", retryable=True)
            mime = str(found.get("mimetype") or "") or None
            shared.append(Attachment(
                kind="photo" if (mime or "").startswith("image/") else "document",
                platform_file_id=str(found.get("id") or ""), filename=name, mime_type=mime,
                size=len(data), url=url))
        return tuple(shared)

    async def _on_send(self, ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()  # the click is answered by what follows (Slack shows no error)
        if await self.send(str(action.get("value") or ""), field(body, "user", "id")):
            await self.console.respond(field(body, "response_url"), {
                "replace_original": True, "text": "Canned reply sent (see the thread)."})

    async def _on_edit(self, ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        token, user = str(action.get("value") or ""), field(body, "user", "id")
        preview = await self.store.get_preview(token)
        await ack()
        if preview is None or preview.slack_user != user or preview.state != "ready":
            await self._say(user, "That canned reply was already sent or cancelled.", None)
            return
        try:
            meta = json.dumps({"token": token, "response_url": field(body, "response_url")})
            await self.console.open_view(field(body, "trigger_id"),
                                         edit_view(meta, preview.name, preview.text))
        except SendError as exc:
            log.warning("could not open the edit modal: %s", exc.describe())

    async def _on_edit_submit(self, ack: Ack, body: dict[str, Any],
                              view: dict[str, Any]) -> None:
        text = submitted(view, "text").strip()
        if not text:
            await ack(response_action="errors", errors={"text": "Write the reply."})
            return
        await ack()
        meta = _metadata(view)
        if await self.send(str(meta.get("token") or ""), field(body, "user", "id"), text):
            await self.console.respond(str(meta.get("response_url") or ""), {
                "replace_original": True, "text": "Canned reply sent as edited (see the thread)."})

    async def _on_cancel(self, ack: Ack, body: dict[str, Any],
                         action: dict[str, Any]) -> None:
        token, user = str(action.get("value") or ""), field(body, "user", "id")
        await ack()
        preview = await self.store.claim_preview(token, user, None, self.library.clock())
        if preview is None:
            return
        await self.store.finish_preview(token, "cancelled", None, self.library.clock())
        await self.console.respond(field(body, "response_url"), {
            "replace_original": True,
            "text": f"Canned reply `{preview.name}` cancelled: nothing was sent."})

    # -- the message shortcuts ---------------------------------------------------------------
    async def _on_pick_shortcut(self, ack: Ack, body: dict[str, Any]) -> None:
        await ack()
        channel, user = field(body, "channel", "id"), field(body, "user", "id")
        thread = field(body, "message", "thread_ts") or field(body, "message", "ts")
        conv = (await self.actions.conversation_by_thread(channel, thread)
                if channel in self.console.channels and thread else None)
        if conv is None:
            await self._say(user, "This message is not part of a customer conversation.", None)
            return
        if not await self._allowed(user, thread):
            return
        query = str((body.get("message") or {}).get("text") or "")[:200]
        if field(body, "message", "bot_id") == "":
            query = ""  # an agent's own message: start from the whole list
        view = await self._pick_view(conv, user, channel, thread, query)
        try:
            await self.console.open_view(field(body, "trigger_id"), view)
        except SendError as exc:
            log.warning("could not open the canned reply picker: %s", exc.describe())

    async def _pick_view(self, conv: Conversation, user: str, channel: str, thread: str,
                         query: str) -> dict[str, Any]:
        team = self.console.channel_team(channel)
        found = await self.library.search(user, team, query)
        if not found and query:
            found = await self.library.search(user, team, "")
        ctx = await self.context(conv, user, channel)
        filled: list[tuple[CannedReply, str]] = []
        for reply in found:
            try:
                filled.append((reply, self.library.fill(reply, ctx)))
            except TemplateError as exc:
                filled.append((reply, f"(cannot be filled: {exc})"))
        meta = json.dumps({"channel": channel, "thread": thread})
        return pick_view(meta, query, filled)

    async def _on_search(self, ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        view = body.get("view") if isinstance(body.get("view"), dict) else None
        if view is None:
            return
        where = _meta(view)
        user = field(body, "user", "id")
        conv = await self.actions.conversation_by_thread(where[0], where[1])
        if conv is None:
            return
        query = str(action.get("value") or "")[:200]
        try:
            await self.console.update_view(field(view, "id"), await self._pick_view(
                conv, user, where[0], where[1], query), field(view, "hash") or None)
        except SendError as exc:
            log.info("the canned reply picker was not redrawn: %s", exc.describe())

    async def _on_pick_submit(self, ack: Ack, body: dict[str, Any],
                              view: dict[str, Any]) -> None:
        name = submitted(view, "choice")
        if not name:
            await ack(response_action="errors", errors={"choice": "Pick a reply."})
            return
        await ack()
        channel, thread = _meta(view)
        user = field(body, "user", "id")
        conv = await self.actions.conversation_by_thread(channel, thread)
        if conv is not None:
            await self.preview(channel, thread, user, conv, name)

    async def _on_save_shortcut(self, ack: Ack, body: dict[str, Any]) -> None:
        await ack()
        channel, user = field(body, "channel", "id"), field(body, "user", "id")
        message = body.get("message") if isinstance(body.get("message"), dict) else {}
        assert isinstance(message, dict)
        meta = message.get("metadata") if isinstance(message.get("metadata"), dict) else {}
        ours = isinstance(meta, dict) and meta.get("event_type") == CANNED_EVENT
        text = str(message.get("text") or "")
        if channel not in self.console.channels or (message.get("bot_id") and not ours) \
                or not text.strip():
            await self._say(user, "Only an agent's reply in a support channel can be saved "
                            "as a canned reply.", None, channel or None)
            return
        if not await self._allowed(user, None):
            return
        team = self.console.channel_team(channel)
        try:
            await self.console.open_view(field(body, "trigger_id"),
                                         save_view(json.dumps({"channel": channel}), text, team))
        except SendError as exc:
            log.warning("could not open the save modal: %s", exc.describe())

    async def _on_save_submit(self, ack: Ack, body: dict[str, Any],
                              view: dict[str, Any]) -> None:
        name = submitted(view, "name").strip().lower()
        text = submitted(view, "text")
        if not NAME.fullmatch(name):
            await ack(response_action="errors", errors={
                "name": "Lowercase letters, digits, _ - or . (64 at most)."})
            return
        problem = check_body(text)
        if problem is not None:
            await ack(response_action="errors", errors={"text": problem[:150]})
            return
        await ack()
        channel, _ = _meta(view)
        user = field(body, "user", "id")
        team = (self.console.channel_team(channel)
                if submitted(view, "scope") == "team" else None)
        self.console.answering.set(channel or None)
        await self._store_reply(user, team, name, submitted(view, "title").strip(), text, None)


def _shown(name: str) -> str:
    """An unknown name as typed, short enough for a note (a name is at most 64 characters)."""
    return mrkdwn_escape(name if len(name) <= 64 else name[:64] + "…")


def _metadata(view: dict[str, Any]) -> dict[str, Any]:
    """A modal's `private_metadata` (ours: a JSON object); {} for anything else."""
    try:
        data = json.loads(str(view.get("private_metadata") or "{}"))
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _meta(view: dict[str, Any]) -> tuple[str, str]:
    data = _metadata(view)
    return str(data.get("channel") or ""), str(data.get("thread") or "")
