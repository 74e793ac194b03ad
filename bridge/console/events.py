"""`POST /slack/events`: Slack's events, commands and interactivity, verified before Bolt.

Bolt parses before it verifies, answers 500 to a malformed body and 404 to events without a
listener, and acknowledges events before listeners run unless told otherwise.  So this handler
checks size (413), signature and freshness (401) and shape (400) itself, then hands the request
to a Bolt `AsyncApp` running with `process_before_response=True`: the agent's reply is committed
before Slack gets its 200.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any
from urllib.parse import parse_qs

from aiohttp import web
from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest

from bridge.canned import CannedLibrary
from bridge.console.commands import ConsoleActions, ConsoleCommands, parse_command, slack_files
from bridge.console.slack import SlackConsole
from bridge.console.text import is_note
from connectors.base import Malformed, Unauthorized, WebhookRejected, read_body, rejection
from vocab.models import AgentReply
from vocab.untrusted import load_json

log = logging.getLogger(__name__)
RELAYED_SUBTYPES = frozenset({None, "thread_broadcast", "file_share"})
EDIT_SUBTYPES = frozenset({"message_changed", "message_deleted"})


MAX_SKEW = 300  # seconds: Slack's own five-minute window


_TIMESTAMP = re.compile(r"[0-9]{1,12}")
CONTENT_TYPES = ("application/json", "application/x-www-form-urlencoded")
# Where Slack puts an object (or a list of objects): anything else is refused before Bolt,
# whose matchers would fail on it (`"view": null`, a string `message`).
OBJECTS = ("event", "view", "message", "container", "state", "submission")
EVENT_OBJECTS = ("message", "previous_message", "edited", "item")
LISTS = ("actions", "authorizations")


def fresh_headers(timestamp: str, signature: str, now: float) -> bool:
    """What can be checked before the body is read: both headers there, the time fresh."""
    return (bool(_TIMESTAMP.fullmatch(timestamp)) and signature.startswith("v0=")
            and abs(now - int(timestamp)) <= MAX_SKEW)


def verify_signature(secret: bytes, body: bytes, timestamp: str, signature: str,
                     now: float) -> bool:
    """Slack's v0 scheme over the raw bytes (slack_sdk's verifier would decode them first)."""
    if not fresh_headers(timestamp, signature, now):
        return False
    base = b"v0:" + timestamp.encode() + b":" + body
    expected = "v0=" + hmac.new(secret, base, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace"))


def _check_shape(data: dict[str, Any]) -> dict[str, Any]:
    for key in OBJECTS:
        if key in data and not isinstance(data[key], dict):
            raise ValueError(f"{key} must be an object")
    for key in LISTS:
        if key in data and not (isinstance(data[key], list)
                                and all(isinstance(x, dict) for x in data[key])):
            raise ValueError(f"{key} must be a list of objects")
    for key in ("user", "channel", "team"):
        if data.get(key) is not None and not isinstance(data[key], (dict, str)):
            raise ValueError(f"{key} must be an object or a string")
    event = data.get("event")
    if isinstance(event, dict):
        for key in EVENT_OBJECTS:
            if key in event and not isinstance(event[key], dict):
                raise ValueError(f"event.{key} must be an object")
        files = event.get("files")
        if files is not None and not (isinstance(files, list)
                                      and all(isinstance(f, dict) for f in files)):
            raise ValueError("event.files must be a list of objects")
    return data


def parse_slack_body(body: bytes, content_type: str) -> dict[str, Any]:
    """Parse a verified body as Bolt would, but raise ValueError instead of crashing: JSON
    under vocab.untrusted's depth limit, and the shapes Bolt and our listeners rely on."""
    text = body.decode("utf-8")
    if content_type.startswith("application/json") or text.lstrip().startswith("{"):
        data = load_json(body)
        if not isinstance(data, dict):
            raise ValueError("JSON body must be an object")
        if data.get("type") == "event_callback" and not isinstance(data.get("event"), dict):
            raise ValueError("event_callback without an event object")
        return _check_shape(data)
    form = {k: v[0] for k, v in parse_qs(text, keep_blank_values=True, strict_parsing=bool(text),
                                            errors="strict").items()}
    if "payload" in form:
        payload = load_json(form["payload"])
        if not isinstance(payload, dict):
            raise ValueError("payload must be a JSON object")
        return _check_shape(payload)
    if "command" not in form:
        raise ValueError("form body is neither interactivity (payload=) nor a slash command")
    return form


class SlackEvents:
    def __init__(self, console: SlackConsole, actions: ConsoleActions,
                 max_body_bytes: int, body_timeout: float = 10.0,
                 canned: CannedLibrary | None = None) -> None:
        self.console = console
        self.settings = console.settings
        self.actions = actions
        self.commands = ConsoleCommands(console, actions, canned)
        self.max_body_bytes = max_body_bytes
        self.body_timeout = body_timeout
        self._secret = self.settings.signing_secret.encode()
        self.bolt = AsyncApp(
            client=console.client,  # carries the bot token
            process_before_response=True,  # store first, then acknowledge
            request_verification_enabled=False,  # verified in `handle`, before parsing
            ssl_check_enabled=False,
            logger=logging.getLogger("bridge.console.bolt"),
        )
        self.bolt.use(self._answering)
        self.bolt.event("message")(self._on_message)
        self.commands.register(self.bolt)

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/slack/events", self.handle)]

    # -- Socket Mode: catch-all (begin) --------------------------------------------------------
    def register_catch_all(self) -> None:
        """Acknowledge authentic requests no other listener wants. Call it once, LAST.

        Bolt runs the first listener, in registration order, whose matcher accepts a request, so
        registered earlier these would shadow the real listeners.  Socket Mode needs them: Slack
        redelivers an envelope nobody acknowledges (over HTTP `handle` turns Bolt's 404 into a
        200 anyway).  The composition root calls this after `SlackEvents` is built.
        """
        anything = re.compile(".*")
        self.bolt.event(anything)(_ignore_event)
        for register in (self.bolt.action, self.bolt.shortcut, self.bolt.command,
                         self.bolt.view, self.bolt.options):
            register(anything)(_ack_only)
        self.bolt.view({"type": "view_closed", "callback_id": anything})(_ack_only)
    # -- Socket Mode: catch-all (end) ----------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await self._read_verified(request)
        except WebhookRejected as exc:
            return rejection("slack", exc, request)

        headers: dict[str, str | Sequence[str]] = {}
        for key in request.headers:
            headers[key.lower()] = request.headers.getall(key)
        # Bolt parses the body again: in HTTP mode it refuses a pre-parsed dict ("`body` must
        # be a raw string data"). Agent replies are not the hot path, so the cost is accepted.
        bolt_request = AsyncBoltRequest(body=body.decode("utf-8"), query=request.query_string,
                                        headers=headers)
        response = await self.bolt.async_dispatch(bolt_request)
        if response.status == 404:  # an authentic event we do not use: acknowledge it
            return web.Response(status=200)
        return web.Response(status=response.status, body=response.body,
                            headers={k: v[0] for k, v in response.headers.items()
                                     if k.lower() != "content-length" and v})

    async def _read_verified(self, request: web.Request) -> bytes:
        """401 on the headers before the body is read, then 415/413/408/400 from
        `read_body`, 401 on the signature, 400 on the shape."""
        timestamp = request.headers.get("X-Slack-Request-Timestamp", "")
        signature = request.headers.get("X-Slack-Signature", "")
        if not fresh_headers(timestamp, signature, time.time()):
            raise Unauthorized("invalid request")
        body = await read_body(request, self.max_body_bytes, self.body_timeout, CONTENT_TYPES)
        if not verify_signature(self._secret, body, timestamp, signature, time.time()):
            raise Unauthorized("invalid request")
        try:
            parse_slack_body(body, request.content_type)
        except (ValueError, UnicodeDecodeError) as exc:
            raise Malformed(f"malformed body: {str(exc)[:100]}") from exc
        return body

    async def _answering(self, body: dict[str, Any],
                         next: Callable[[], Awaitable[Any]]) -> Any:
        """Private notes answer in the channel the request came from (each team's own).
        Bolt runs the listener after the middleware has returned, in the same task, so the
        value is set for the rest of this request's task (each request sets its own)."""
        self.console.answering.set(channel_of(body))
        return await next()

    async def _on_message(self, event: dict[str, Any], body: dict[str, Any]) -> None:
        # Whatever is stored here is committed before Slack gets its 200 (or its socket ack);
        # an exception becomes a 500 / no ack, and Slack delivers the event again.
        if event.get("subtype") in EDIT_SUBTYPES:
            edit = self.commands.edit_of(event, body)
            if edit is not None:
                await self.actions.ingest_edit(edit)
            return
        reply = self.agent_reply(event, body)
        if reply is None:
            return
        if await self.commands.teams.moved_away(reply):
            return  # the conversation moved to another team's thread: nothing is sent
        command = parse_command(reply.text, self.settings.command_prefix)
        if command is not None and not reply.files:
            await self.commands.command(reply, *command)  # never relayed to the customer
            return
        result = await self.actions.ingest_reply(reply)
        if result.conversation_id is None:
            # Moved between the check above and the commit: told now, so nothing is lost
            # without a word.
            if await self.commands.teams.moved_away(reply):
                return
            log.debug("thread %s is not a bridge conversation", reply.thread_ts)

    def agent_reply(self, event: dict[str, Any], body: dict[str, Any]) -> AgentReply | None:
        """The reply an event carries, or None for anything that must not reach a customer."""
        if event.get("subtype") not in RELAYED_SUBTYPES:
            return None  # edits, deletions, joins, bot_message...
        if event.get("bot_id") or event.get("bot_profile"):
            return None  # bots, including the bridge's own posts
        ws = self.console.workspace
        user = event.get("user")
        if not isinstance(user, str) or not user or (ws and user == ws.bot_user_id):
            return None
        channel, ts, thread_ts = event.get("channel"), event.get("ts"), event.get("thread_ts")
        if channel not in self.console.channels or not isinstance(ts, str):
            return None
        if not isinstance(thread_ts, str) or thread_ts == ts:
            return None  # a top-level channel message, not a reply in a conversation
        team = (ws.team_id if ws and ws.team_id else None) or body.get("team_id")
        user_team = event.get("user_team") or event.get("team")
        if team and user_team and user_team != team:
            log.info("ignoring a reply from outside the workspace (team %s)", user_team)
            return None
        text = event.get("text")
        text = text if isinstance(text, str) else ""
        return AgentReply(slack_channel=channel, slack_ts=ts, thread_ts=thread_ts,
                          slack_user=user, text=text, files=slack_files(event),
                          is_note=is_note(text, self.settings.note_prefix),
                          event_id=body.get("event_id") if isinstance(body.get("event_id"),
                                                                      str) else None)


def channel_of(body: dict[str, Any]) -> str | None:
    """The channel an event or interaction happened in, when it names one."""
    event = body.get("event")
    found: Any = None
    if isinstance(event, dict):
        item = event.get("item")
        found = event.get("channel") or (item.get("channel") if isinstance(item, dict) else None)
    if found is None and isinstance(body.get("channel"), dict):
        found = body["channel"].get("id")
    if found is None and isinstance(body.get("container"), dict):
        found = body["container"].get("channel_id")
    return found if isinstance(found, str) and found else None


async def _ignore_event() -> None:
    """A catch-all for events: Bolt acknowledges an event once its listener returns."""


async def _ack_only(ack: AsyncAck) -> None:
    """A catch-all for actions, shortcuts, commands, views and options: acknowledge only."""
    await ack()
