"""The Slack side of the agent console: posting into threads and knowing who the agents are."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bridge.settings import SlackSettings
from bridge.teams import Team, resolve_teams
from connectors.base import SendError, fetch_media
from vocab.untrusted import HostRule, origin

log = logging.getLogger(__name__)

# Errors that no retry can fix; everything else (5xx, timeouts, 429) is retried.
PERMANENT = frozenset({
    "channel_not_found", "not_in_channel", "is_archived", "invalid_auth", "not_authed",
    "account_inactive", "token_revoked", "token_expired", "no_text", "msg_too_long",
    "invalid_blocks", "msg_blocks_too_long", "restricted_action", "missing_scope",
    "invalid_arguments", "too_many_attachments", "channel_is_archived", "user_not_found",
})
AGENT_TTL = 600.0  # seconds a users.info answer is trusted
FILE_HOST = "files.slack.com"  # where url_private_download points
RESPONSE_HOST = "hooks.slack.com"  # where an interaction's response_url points
OUTBOX_EVENT = "bridge_outbox"  # message metadata: which outbox row a post delivered
LOOKUP_LIMIT = 200  # messages per page when looking a post up (Slack's advice: <= 200)
LOOKUP_PAGES = 5  # pages at most, per row looked up


@dataclass(frozen=True)
class Agent:
    user_id: str
    name: str
    allowed: bool
    reason: str = ""
    avatar: str = ""  # the profile picture's URL (image_72), for the web chat
    image: str = ""  # the larger picture (image_192) a canned reply is posted under


@dataclass(frozen=True)
class Workspace:
    team_id: str
    bot_user_id: str
    bot_id: str
    url: str = ""


class SupportChannelError(Exception):
    """The support channel cannot be used: `code` is channel_not_found, is_archived or
    not_in_channel."""

    def __init__(self, channel: str, code: str) -> None:
        super().__init__(f"support channel {channel}: {code}")
        self.channel = channel
        self.code = code


def _carries(message: dict[str, Any], outbox_id: int) -> bool:
    """The message is the bridge's post for this outbox row (its metadata, or for a file's
    message the block id)."""
    meta = message.get("metadata") or {}
    if meta.get("event_type") == OUTBOX_EVENT and \
            str((meta.get("event_payload") or {}).get("outbox_id")) == str(outbox_id):
        return True
    mark = f"{OUTBOX_EVENT}:{outbox_id}"
    return any(isinstance(b, dict) and b.get("block_id") == mark
               for b in message.get("blocks") or [])


class SlackConsole:
    def __init__(self, settings: SlackSettings, session: aiohttp.ClientSession,
                 teams: Mapping[str, Team] | None = None) -> None:
        self.settings = settings
        # Every team by name (`[teams.<name>]`): each channel works as the support channel.
        self.team_info = dict(teams or resolve_teams({}, settings.support_channel, "UTC"))
        self.team_channels = {name: team.channel for name, team in self.team_info.items()}
        self.teams = sorted(self.team_channels)
        self.channels = frozenset({settings.support_channel, *self.team_channels.values()})
        self._team_of = {channel: name for name, channel in self.team_channels.items()}
        # The channel of the event being answered: where a private note goes by default.
        self.answering: ContextVar[str | None] = ContextVar("answering", default=None)
        self.client = AsyncWebClient(token=settings.bot_token, base_url=settings.api_base_url,
                                     session=session, timeout=int(settings.request_timeout))
        self.workspace: Workspace | None = None
        api = origin(settings.api_base_url)
        self.file_hosts = HostRule.of([FILE_HOST], [settings.api_base_url],
                                      credentials=[FILE_HOST, *([api] if api else [])])
        # Where an interaction's response_url may point (Slack's hooks; the configured API's
        # origin, so a stand-in works): nothing else is ever called with it.
        self.response_hosts = HostRule.of([RESPONSE_HOST], [settings.api_base_url])
        # users.info answers, kept for AGENT_TTL so renames and deactivations are seen.
        self._agents: dict[str, tuple[float, Agent]] = {}
        self.lookups = 0  # conversations.history/replies calls made by `find_posted`

    async def start(self) -> None:
        resp = await self.client.auth_test()
        self.workspace = Workspace(team_id=str(resp.get("team_id") or ""),
                                   bot_user_id=str(resp.get("user_id") or ""),
                                   bot_id=str(resp.get("bot_id") or ""),
                                   url=str(resp.get("url") or ""))
        log.info("slack console ready in team %s as %s", self.workspace.team_id,
                 self.workspace.bot_user_id)
        for channel in sorted(self.channels):
            await self._check_channel(channel)

    async def _check_channel(self, channel: str) -> None:
        """The support channel exists, is not archived, and the app is in it (else nothing
        agents write there reaches the bridge); refuse to start otherwise.  Without the
        channels:read scope (an app installed from an older manifest) it only warns.
        Each team's channel is checked the same way."""
        try:
            resp = await self.client.conversations_info(channel=channel)
        except SlackApiError as exc:
            error = str(exc.response.get("error") or "")
            if error in ("channel_not_found", "is_archived"):
                raise SupportChannelError(channel, error) from None
            log.warning("could not check the support channel %s (%s); add channels:read "
                        "from config/slack-app-manifest.yml to check it at start", channel,
                        error or exc.response.status_code)
            return
        info = resp.get("channel") or {}
        if info.get("is_archived"):
            raise SupportChannelError(channel, "is_archived")
        if not info.get("is_member", True):
            raise SupportChannelError(channel, "not_in_channel")

    def _error(self, exc: Exception, channel: str) -> SendError:
        if isinstance(exc, SlackApiError):
            status = exc.response.status_code
            error = str(exc.response.get("error") or f"http_{status}")
            if status == 429:
                retry_after = float(exc.response.headers.get("Retry-After", "1") or 1)
                return SendError("Slack rate limit", code="ratelimited", retryable=True,
                                 retry_after=retry_after, gate=f"slack:{channel}")
            return SendError(f"Slack refused the call: {error}", code=error,
                             retryable=error not in PERMANENT)
        if isinstance(exc, aiohttp.ClientError | asyncio.TimeoutError):
            return SendError(f"Slack unreachable: {exc!r}", code="network", retryable=True)
        return SendError(f"Slack call failed: {exc!r}", code="unexpected", retryable=True)

    async def post(self, text: str, thread_ts: str | None, *, channel: str | None = None,
                   blocks: Sequence[dict[str, Any]] | None = None,
                   outbox_id: int | None = None) -> str:
        """Post into the support channel (a thread if `thread_ts`); return the message ts.
        `outbox_id` goes along in the message's metadata (no person sees it), so that a post
        whose outcome a crash left unknown can be found (`find_posted`)."""
        target = channel or self.settings.support_channel
        metadata = None if outbox_id is None else {
            "event_type": OUTBOX_EVENT, "event_payload": {"outbox_id": outbox_id}}
        try:
            resp = await self.client.chat_postMessage(channel=target, text=text,
                                                      thread_ts=thread_ts, unfurl_links=False,
                                                      unfurl_media=False, blocks=blocks,
                                                      metadata=metadata)
        except Exception as exc:
            raise self._error(exc, target) from exc
        return str(resp["ts"])

    async def post_as(self, agent: Agent, text: str, thread_ts: str, *, channel: str,
                      metadata: dict[str, Any] | None = None) -> str:
        """Post into a thread under the agent's name and picture (`chat:write.customize`):
        what the bridge sends for them (a canned reply).  Returns the message ts."""
        try:
            resp = await self.client.chat_postMessage(
                channel=channel, text=text, thread_ts=thread_ts, username=agent.name,
                icon_url=agent.image or None, unfurl_links=False, unfurl_media=False,
                metadata=metadata)
        except Exception as exc:
            raise self._error(exc, channel) from exc
        return str(resp["ts"])

    async def open_view(self, trigger_id: str, view: dict[str, Any]) -> None:
        """Open a modal (views.open) on the click or shortcut that gave `trigger_id`."""
        try:
            await self.client.views_open(trigger_id=trigger_id, view=view)
        except Exception as exc:
            raise self._error(exc, "views.open") from exc

    async def update_view(self, view_id: str, view: dict[str, Any],
                          hash: str | None = None) -> None:
        """Redraw an open modal (views.update)."""
        try:
            await self.client.views_update(view_id=view_id, view=view, hash=hash)
        except Exception as exc:
            raise self._error(exc, "views.update") from exc

    async def find_posted(self, outbox_id: int, thread_ts: str | None, since: float,
                          *, channel: str | None = None) -> str | None:
        """The ts of the bridge's post for outbox row `outbox_id`, if Slack has it: looked up
        in the thread's replies (`thread_ts`) or the channel's top-level history, from `since`
        (a Unix time) on, at most `LOOKUP_PAGES` pages."""
        target = channel or self.settings.support_channel
        cursor: str | None = None
        for _ in range(LOOKUP_PAGES):
            args: dict[str, Any] = {"channel": target, "include_all_metadata": True,
                                    "limit": LOOKUP_LIMIT, "oldest": f"{since:.6f}"}
            if cursor:
                args["cursor"] = cursor
            try:
                if thread_ts is None:
                    resp = await self.client.conversations_history(**args)
                else:
                    resp = await self.client.conversations_replies(ts=thread_ts, **args)
            except Exception as exc:
                raise self._error(exc, target) from exc
            self.lookups += 1
            for message in resp.get("messages") or []:
                if _carries(message, outbox_id):
                    return str(message["ts"])
            cursor = str((resp.get("response_metadata") or {}).get("next_cursor") or "")
            if not resp.get("has_more") or not cursor:
                return None
        log.warning("outbox row %s: not found in %d pages of Slack history; sending it",
                    outbox_id, LOOKUP_PAGES)
        return None

    async def update(self, ts: str, text: str, blocks: Sequence[dict[str, Any]] | None,
                     *, channel: str | None = None) -> None:
        """Redraw one of the bridge's own messages (a thread's parent, a notice)."""
        target = channel or self.settings.support_channel
        try:
            await self.client.chat_update(channel=target, ts=ts, text=text, blocks=blocks)
        except Exception as exc:
            raise self._error(exc, target) from exc

    async def upload(self, thread_ts: str | None, filename: str, data: bytes,
                     comment: str, *, channel: str | None = None,
                     outbox_id: int | None = None) -> None:
        """Upload a customer's file into the thread (files.getUploadURLExternal + complete).
        A file's message takes no metadata: with `outbox_id` the comment goes as a block whose
        `block_id` names the row (no person sees a block id), for `find_posted`."""
        target = channel or self.settings.support_channel
        extra: dict[str, Any] = {"initial_comment": comment}
        if outbox_id is not None:
            extra = {"blocks": json.dumps([{
                "type": "section", "block_id": f"{OUTBOX_EVENT}:{outbox_id}",
                "text": {"type": "mrkdwn", "text": comment}}])}
        try:
            await self.client.files_upload_v2(channel=target, thread_ts=thread_ts,
                                              filename=filename, content=data,
                                              request_file_info=False, **extra)
        except Exception as exc:
            raise self._error(exc, target) from exc

    async def share(self, thread_ts: str, filename: str, data: bytes, comment: str, *,
                    channel: str) -> dict[str, Any]:
        """Upload a file an agent sends (a canned reply's) into the thread; the file object
        with its `url_private_download` (files.info), from which the customer side fetches it
        as it fetches any file an agent attaches."""
        try:
            resp = await self.client.files_upload_v2(channel=channel, thread_ts=thread_ts,
                                                     filename=filename, content=data,
                                                     initial_comment=comment)
            files = resp.get("files") or [resp.get("file") or {}]
            # completeUploadExternal names the file (id, title); files.info says where it is.
            info = await self.client.files_info(file=str(files[0]["id"]))
        except Exception as exc:
            raise self._error(exc, channel) from exc
        found = info.get("file")
        return dict(found) if isinstance(found, dict) else {}

    async def download(self, url: str, max_bytes: int) -> bytes:
        """Fetch a file an agent attached (url_private_download), size-capped, only from
        files.slack.com or the configured API's origin; the bot token goes only there."""
        session = self.client.session
        assert session is not None
        return await fetch_media(session, url, self.file_hosts, max_bytes, "Slack file download",
                                 credentials={"Authorization": f"Bearer {self.settings.bot_token}"})

    async def react(self, ts: str, name: str, *, channel: str | None = None) -> None:
        """Add a reaction to a message (a delivery receipt on an agent's reply)."""
        target = channel or self.settings.support_channel
        try:
            await self.client.reactions_add(channel=target, timestamp=ts, name=name)
        except SlackApiError as exc:
            if exc.response.get("error") == "already_reacted":
                return
            raise self._error(exc, target) from exc
        except Exception as exc:
            raise self._error(exc, target) from exc

    async def ephemeral(self, user: str, text: str, thread_ts: str | None,
                        blocks: Sequence[dict[str, Any]] | None = None) -> None:
        """A note only `user` sees (best effort: nothing depends on it)."""
        try:
            await self.client.chat_postEphemeral(channel=self.answering.get()
                                                 or self.settings.support_channel,
                                                 user=user, text=text, thread_ts=thread_ts,
                                                 blocks=blocks)
        except Exception as exc:
            log.warning("ephemeral message to %s failed: %r", user, exc)

    async def respond(self, response_url: str, message: dict[str, Any]) -> None:
        """Answer an interaction through its `response_url`: redraw (`replace_original`) or
        remove (`delete_original`) the ephemeral message it came from, which `chat.update`
        cannot change.  Best effort: nothing depends on it."""
        session = self.client.session
        if not response_url or session is None or not self.response_hosts.allows(response_url):
            return
        try:
            async with session.post(response_url, json=message,
                                    timeout=aiohttp.ClientTimeout(
                                        total=self.settings.request_timeout)) as resp:
                if resp.status >= 300:
                    log.info("response_url answered %s", resp.status)
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.info("response_url failed: %r", exc)

    async def publish_home(self, user: str, blocks: Sequence[dict[str, Any]]) -> None:
        """The app's Home tab for `user` (views.publish; best effort)."""
        try:
            await self.client.views_publish(user_id=user,
                                            view={"type": "home", "blocks": list(blocks)})
        except Exception as exc:
            log.warning("could not publish the Home tab of %s: %r", user, exc)

    def zone_of(self, channel: str | None) -> ZoneInfo | None:
        """The time zone of the team whose channel this is (`[teams.<name>] timezone`)."""
        team = self.team_info.get(self._team_of.get(channel or "", ""))
        return None if team is None else ZoneInfo(team.timezone)

    def channel_team(self, channel: str | None) -> str | None:
        """The team whose channel this is."""
        return self._team_of.get(channel or "")

    def permalink(self, ts: str, channel: str | None = None) -> str:
        """A link to a message (Slack's own permalink shape, from auth.test's workspace URL)."""
        base = "https://slack.com/"
        if self.workspace is not None and self.workspace.url:
            base = self.workspace.url
        target = channel or self.settings.support_channel
        return f"{base.rstrip('/')}/archives/{target}/p{ts.replace('.', '')}"

    async def names(self, user_ids: Iterable[str]) -> dict[str, str]:
        """Display names for mentions; unknown users keep their id."""
        found: dict[str, str] = {}
        for user_id in user_ids:
            try:
                agent = await self.agent(user_id)
            except SendError:
                continue
            if agent.name:
                found[user_id] = agent.name
        return found

    async def agent(self, user_id: str) -> Agent:
        """Who wrote in a thread, and whether they may speak to customers (cached)."""
        cached = self._agents.get(user_id)
        if cached is not None and time.monotonic() - cached[0] < AGENT_TTL:
            return cached[1]
        try:
            resp = await self.client.users_info(user=user_id)
        except Exception as exc:
            raise self._error(exc, "users.info") from exc
        user = resp.get("user") or {}
        profile = user.get("profile") or {}
        name = (profile.get("display_name") or profile.get("real_name")
                or user.get("real_name") or user.get("name") or "")
        team = self.workspace.team_id if self.workspace else ""
        reason = ""
        if user.get("is_bot"):
            reason = "bot users cannot answer customers"
        elif user.get("is_stranger"):
            reason = "people outside this workspace cannot answer customers"
        elif team and user.get("team_id") and user.get("team_id") != team:
            reason = "people outside this workspace cannot answer customers"
        elif user.get("deleted"):
            reason = "deactivated users cannot answer customers"
        elif not name:
            reason = "the author has no display or real name in Slack"
        avatar = profile.get("image_72") or profile.get("image_48") or ""
        image = str(profile.get("image_192") or profile.get("image_72") or "")
        agent = Agent(user_id=user_id, name=name, allowed=not reason, reason=reason,
                      avatar=avatar if isinstance(avatar, str) else "", image=image)
        self._agents[user_id] = (time.monotonic(), agent)
        return agent
