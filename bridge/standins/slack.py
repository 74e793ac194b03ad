"""Slack stand-ins: a Web API server for slack_sdk/Bolt (Socket Mode in `slack_socket`), and
(re-exported from `slack_events`) an Events API sender."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Collection
from pathlib import Path

import yaml
from aiohttp import web

from bridge.standins import slack_privacy
from bridge.standins.base import Injection, JSONDict, read_params
from bridge.standins.slack_events import SlackEventSender, TsClock
from bridge.standins.slack_files import DOWNLOAD_SCOPE, SlackFiles
from bridge.standins.slack_files import json_value as _json_value
from bridge.standins.slack_history import history_page
from bridge.standins.slack_socket import SocketAck
from bridge.standins.slack_views import modal_open, modal_update

__all__ = ["ALL_SCOPES", "METHOD_SCOPES", "SlackEventSender", "SlackStandin", "SocketAck",
           "TsClock", "manifest_scopes"]

_MSG_OPTIONAL = ("username", "icon_url", "icon_emoji")
_USER_ID = re.compile(r"[UW][A-Z0-9]{2,20}")
_HISTORY = ("channels:history", "groups:history", "im:history", "mpim:history")
# What Slack requires of each method it serves here (the "Required scopes" of
# api.slack.com/methods/<method>; any one of several will do).  auth.test needs none.
METHOD_SCOPES: dict[str, tuple[str, ...]] = {
    "chat.postMessage": ("chat:write",),
    "chat.update": ("chat:write",),
    "chat.postEphemeral": ("chat:write",),
    "users.info": ("users:read",),
    "reactions.add": ("reactions:write",),
    "reactions.remove": ("reactions:write",),
    "conversations.info": ("channels:read", "groups:read", "im:read", "mpim:read"),
    "conversations.history": _HISTORY,
    "conversations.replies": _HISTORY,
    "files.getUploadURLExternal": ("files:write",),
    "files.completeUploadExternal": ("files:write",),
    "files.info": ("files:read",),
    **slack_privacy.SCOPES,
}
RESPONSE_USES = 5  # a response_url works five times
CUSTOMIZE_SCOPE = "chat:write.customize"  # username / icon_url on chat.postMessage
ALL_SCOPES: frozenset[str] = frozenset(
    {scope for scopes in METHOD_SCOPES.values() for scope in scopes}
    | {DOWNLOAD_SCOPE, CUSTOMIZE_SCOPE})
# The app manifest admins install from, in a checkout (absent from an installed wheel).
MANIFEST = Path(__file__).resolve().parents[2] / "config" / "slack-app-manifest.yml"


def manifest_scopes(path: Path = MANIFEST) -> frozenset[str] | None:
    """The bot scopes an app manifest asks for, or None when there is no such file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    manifest = yaml.safe_load(text)
    return frozenset(str(s) for s in manifest["oauth_config"]["scopes"]["bot"])


class SlackStandin(SlackFiles):
    """Enough of the Slack Web API for ``AsyncWebClient(base_url=standin.base_url)`` and Bolt."""

    def __init__(
        self,
        *,
        team_id: str = "T0BRIDGE",
        bot_user_id: str = "U0BOT",
        bot_id: str = "B0BOT",
        bot_token: str | None = "xoxb-standin",
        app_id: str = "A0BRIDGE",
        app_token: str | None = None,
        scopes: Collection[str] | None = None,
        any_user: bool = False,
    ) -> None:
        """`scopes`: what the bot token was granted; by default what the app manifest in
        `config/` asks for (every scope, `ALL_SCOPES`, where that file is absent).  A method
        whose scope is missing is refused as Slack refuses it (`missing_scope`).
        `any_user`: every well-formed user id (`U…`/`W…`) is a member of the workspace, named
        after its id (run on its own, `python -m bridge.standins slack`, where no test adds
        users); otherwise an id not added with `add_user` is `user_not_found`."""
        super().__init__(app_id=app_id, app_token=app_token)
        if scopes is None:
            scopes = manifest_scopes() or ALL_SCOPES
        self.scopes = frozenset(scopes)
        self.team_id = team_id
        self.any_user = any_user
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.bot_token = bot_token
        self.messages: list[JSONDict] = []
        self.ephemerals: list[JSONDict] = []
        self.responses: list[JSONDict] = []  # what the app posted to response_urls
        self.home_views: dict[str, JSONDict] = {}  # views.publish: user -> the Home tab shown
        self.views: dict[str, JSONDict] = {}  # views.open / views.update: id -> modal shown
        self._view_seq = itertools.count(1)
        self.files: dict[str, JSONDict] = {}
        self.users: dict[str, JSONDict] = {}
        self.reactions: dict[tuple[str, str], list[str]] = {}
        # conversations.info: channel -> fields over the defaults (None: no such channel)
        self.channel_info: dict[str, JSONDict | None] = {}
        self.posts: list[tuple[float, str]] = []
        self._by_key: dict[tuple[str, str], JSONDict] = {}
        self._clock = TsClock()
        self._file_seq = itertools.count(1)
        self._auth = f"Bearer {bot_token}" if bot_token else None
        self._methods: dict[str, Callable[[JSONDict], JSONDict]] = {
            "auth.test": self._m_auth_test,
            "chat.postMessage": self._m_post_message,
            "chat.update": self._m_update,
            "chat.postEphemeral": self._m_post_ephemeral,
            "users.info": self._m_users_info,
            "reactions.add": self._m_reactions_add,
            "reactions.remove": self._m_reactions_remove,
            "conversations.info": self._m_conversations_info,
            "views.publish": self._m_views_publish,
            "views.open": self._m_views_open,
            "views.update": self._m_views_update,
            "conversations.history": self._m_history,
            "conversations.replies": self._m_replies,
            "files.getUploadURLExternal": self._m_get_upload_url,
            "files.completeUploadExternal": self._m_complete_upload,
            "files.info": self._m_files_info,
            **slack_privacy.methods(self),
        }
        router = self.app.router
        router.add_route("*", "/api/{method}", self._h_api)
        router.add_post("/upload/{file_id}", self._h_upload)
        router.add_get("/files-pri/{file_id}/{name}", self._h_download)
        router.add_get("/_standin/posts", self._h_posts)
        router.add_post("/_standin/respond/{channel}/{ts}", self._h_respond)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    # ------------------------------------------------------------------ test helpers
    def add_user(
        self,
        user_id: str,
        *,
        display_name: str = "",
        real_name: str = "",
        team_id: str | None = None,
        is_bot: bool = False,
        is_stranger: bool = False,
        deleted: bool = False,
    ) -> None:
        user: JSONDict = {
            "id": user_id,
            "team_id": team_id or self.team_id,
            "name": (display_name or real_name or user_id).lower().replace(" ", "."),
            "real_name": real_name,
            "is_bot": is_bot,
            "deleted": deleted,
            "profile": {"display_name": display_name, "real_name": real_name,
                        "image_72": f"https://avatars.standin.slack.com/{user_id}_72.png",
                        "image_192": f"https://avatars.standin.slack.com/{user_id}_192.png"},
        }
        if is_stranger:
            user["is_stranger"] = True
        self.users[user_id] = user

    def thread(self, channel: str, thread_ts: str) -> list[JSONDict]:
        """The parent (if posted here) and the replies of a thread, in posting order."""
        return [
            m
            for m in self.messages
            if m["channel"] == channel and (m["ts"] == thread_ts or m["thread_ts"] == thread_ts)
        ]

    def parents(self, channel: str) -> list[JSONDict]:
        return [m for m in self.messages if m["channel"] == channel and not m["thread_ts"]]

    # ------------------------------------------------------------------ HTTP handlers
    async def _h_api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = await read_params(request)
        if self._auth is not None and request.headers.get("Authorization") != self._auth:
            token = params.get("token")
            if token is None or f"Bearer {token}" != self._auth:
                missing = token is None and "Authorization" not in request.headers
                return self._error(
                    method, params, request, "not_authed" if missing else "invalid_auth"
                )
        needed = METHOD_SCOPES.get(method, ())
        if needed and self.scopes.isdisjoint(needed):
            self._record(method, params, request, 200, False)
            return web.json_response({"ok": False, "error": "missing_scope",
                                      "needed": ",".join(needed),
                                      "provided": ",".join(sorted(self.scopes))})
        if self._failures or self._delays:
            injection = await self._apply_injections(method)
            if injection is not None:
                return self._injected(method, params, request, injection)
        handler = self._methods.get(method)
        if handler is None:
            return self._error(method, params, request, "unknown_method")
        body = handler(params)
        self._record(method, params, request, 200, body["ok"])
        if method == "chat.postMessage" and body["ok"]:
            self.posts.append((self.calls[-1].at, body["message"]["text"]))
        return web.json_response(body)

    def _error(
        self, method: str, params: JSONDict, request: web.Request, error: str, status: int = 200
    ) -> web.Response:
        self._record(method, params, request, status, False)
        return web.json_response({"ok": False, "error": error}, status=status)

    def _injected(
        self, method: str, params: JSONDict, request: web.Request, inj: Injection
    ) -> web.Response:
        self._record(method, params, request, inj.status, False)
        if inj.status == 429:
            return web.json_response(
                {"ok": False, "error": inj.error or "ratelimited"},
                status=429,
                headers={"Retry-After": str(inj.retry_after)},
            )
        return web.json_response(
            {"ok": False, "error": inj.error or "internal_error"}, status=inj.status
        )

    def response_url(self, message: JSONDict) -> str:
        """The response_url Slack would put in an interaction with `message` (an ephemeral
        one here): the app redraws or deletes the message through it."""
        return (f"http://127.0.0.1:{self.port}/_standin/respond/{message['channel']}/"
                f"{message['ts']}")

    async def _h_respond(self, request: web.Request) -> web.Response:
        """Slack's response_url: `replace_original` redraws the message, `delete_original`
        removes it (an ephemeral one keeps its record, marked deleted); 5 uses at most."""
        key = (request.match_info["channel"], request.match_info["ts"])
        found = [e for e in self.ephemerals if (e["channel"], e["ts"]) == key]
        try:
            body = await request.json()
        except ValueError:
            return web.Response(status=400, text="invalid_payload")
        self.responses.append({"channel": key[0], "ts": key[1], "body": body})
        uses = sum(1 for r in self.responses if (r["channel"], r["ts"]) == key)
        if not found or uses > RESPONSE_USES or not isinstance(body, dict):
            return web.Response(status=404, text="used_url" if found else "no_message")
        message = found[0]
        if body.get("delete_original"):
            message.update(deleted=True, blocks=None)
        elif body.get("replace_original"):
            message.update(text=str(body.get("text") or ""), blocks=body.get("blocks"))
        return web.Response(text="ok")

    async def _h_posts(self, request: web.Request) -> web.Response:
        return web.json_response([[at, text] for at, text in self.posts])

    # ------------------------------------------------------------------ Web API methods
    def _m_auth_test(self, p: JSONDict) -> JSONDict:
        return {
            "ok": True,
            "url": "https://standin.slack.com/",
            "team": "Stand-in",
            "user": "bridge",
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _m_post_message(self, p: JSONDict) -> JSONDict:
        channel = p.get("channel")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        text = p.get("text")
        blocks = p.get("blocks")
        if not text and not blocks:
            return {"ok": False, "error": "no_text"}
        ts = self._clock.next()
        thread_ts = p.get("thread_ts") or None
        message: JSONDict = {
            "type": "message",
            "user": self.bot_user_id,
            "bot_id": self.bot_id,
            "app_id": self.app_id,
            "team": self.team_id,
            "text": text or "",
            "ts": ts,
        }
        if thread_ts:
            message["thread_ts"] = thread_ts
        if blocks:
            blocks = message["blocks"] = _json_value(blocks)
        metadata = _json_value(p.get("metadata"))
        if metadata is not None:
            if not (isinstance(metadata, dict) and isinstance(metadata.get("event_type"), str)
                    and isinstance(metadata.get("event_payload"), dict)):
                return {"ok": False, "error": "invalid_metadata_format"}
            metadata = {"event_type": metadata["event_type"],
                        "event_payload": metadata["event_payload"]}
        stored: JSONDict = {"channel": channel, "thread_ts": thread_ts, "blocks": blocks,
                            "metadata": metadata, **message}
        customize = CUSTOMIZE_SCOPE in self.scopes  # else Slack posts under the app's name
        for key in _MSG_OPTIONAL:
            value = p.get(key) if customize else None
            stored[key] = value
            if value:
                message[key] = value
        self.messages.append(stored)
        self._by_key[(channel, ts)] = stored
        return {"ok": True, "channel": channel, "ts": ts, "message": message}

    def _m_update(self, p: JSONDict) -> JSONDict:
        channel, ts = p.get("channel") or "", p.get("ts") or ""
        stored = self._by_key.get((channel, ts))
        if stored is None:
            return {"ok": False, "error": "message_not_found"}
        if "text" in p:
            stored["text"] = p["text"] or ""
        if "blocks" in p:
            stored["blocks"] = _json_value(p["blocks"])
        stored["edited"] = {"user": self.bot_user_id, "ts": self._clock.next()}
        message = {k: v for k, v in stored.items() if v is not None and k != "channel"}
        return {
            "ok": True,
            "channel": channel,
            "ts": ts,
            "text": stored["text"],
            "message": message,
        }

    def _m_post_ephemeral(self, p: JSONDict) -> JSONDict:
        if not p.get("channel"):
            return {"ok": False, "error": "channel_not_found"}
        if not p.get("user"):
            return {"ok": False, "error": "user_not_in_channel"}
        if not p.get("text") and not p.get("blocks"):
            return {"ok": False, "error": "no_text"}
        ts = self._clock.next()
        self.ephemerals.append(
            {
                "channel": p["channel"],
                "user": p["user"],
                "ts": ts,
                "text": p.get("text") or "",
                "thread_ts": p.get("thread_ts") or None,
                "blocks": _json_value(p.get("blocks")),
            }
        )
        return {"ok": True, "message_ts": ts}

    def _m_users_info(self, p: JSONDict) -> JSONDict:
        wanted = str(p.get("user") or "")
        if wanted not in self.users and self.any_user and _USER_ID.fullmatch(wanted):
            self.add_user(wanted, display_name=wanted, real_name=wanted)
        user = self.users.get(wanted)
        if user is None:
            return {"ok": False, "error": "user_not_found"}
        return {"ok": True, "user": user}

    def _m_reactions_add(self, p: JSONDict) -> JSONDict:
        key, name = (p.get("channel") or "", p.get("timestamp") or ""), p.get("name") or ""
        if not all(key) or not name:
            return {"ok": False, "error": "no_item_specified" if name else "invalid_name"}
        names = self.reactions.setdefault(key, [])
        if name in names:
            return {"ok": False, "error": "already_reacted"}
        names.append(name)
        return {"ok": True}

    def _m_reactions_remove(self, p: JSONDict) -> JSONDict:
        names = self.reactions.get((p.get("channel") or "", p.get("timestamp") or ""), [])
        if p.get("name") not in names:
            return {"ok": False, "error": "no_reaction"}
        names.remove(p["name"])
        return {"ok": True}

    def _m_views_publish(self, p: JSONDict) -> JSONDict:
        view, user = _json_value(p.get("view")), p.get("user_id")
        if not user or not isinstance(view, dict) or view.get("type") != "home":
            return {"ok": False, "error": "invalid_arguments"}
        if len(view.get("blocks") or []) > 100:
            return {"ok": False, "error": "invalid_blocks"}
        self.home_views[str(user)] = view
        return {"ok": True, "view": {"id": f"V{len(self.home_views):08d}", **view}}

    def _m_views_open(self, p: JSONDict) -> JSONDict:
        return modal_open(self, p)

    def _m_views_update(self, p: JSONDict) -> JSONDict:
        return modal_update(self, p)

    def _m_conversations_info(self, p: JSONDict) -> JSONDict:
        channel = p.get("channel")
        if not channel or (channel in self.channel_info and self.channel_info[channel] is None):
            return {"ok": False, "error": "channel_not_found"}
        return {
            "ok": True,
            "channel": {**{
                "id": channel,
                "name": channel.lower(),
                "is_channel": True,
                "is_private": False,
                "is_member": True,
                "is_archived": False,
                "is_ext_shared": False,
                "context_team_id": self.team_id,
                "created": 1700000000,
            }, **(self.channel_info.get(channel) or {})},
        }

    def _m_history(self, p: JSONDict) -> JSONDict:
        """A channel's top-level messages, newest first (thread replies are not listed)."""
        channel = p.get("channel")
        if not channel or (channel in self.channel_info and self.channel_info[channel] is None):
            return {"ok": False, "error": "channel_not_found"}
        top = [m for m in reversed(self.messages) if m["channel"] == channel
               and (not m["thread_ts"] or m["thread_ts"] == m["ts"])]
        return history_page(top, p)

    def _m_replies(self, p: JSONDict) -> JSONDict:
        """A thread: its parent first, then the replies, oldest first."""
        channel, ts = p.get("channel"), p.get("ts")
        if not channel or (channel in self.channel_info and self.channel_info[channel] is None):
            return {"ok": False, "error": "channel_not_found"}
        if not ts:
            return {"ok": False, "error": "invalid_arguments"}
        if (channel, ts) not in self._by_key:
            return {"ok": False, "error": "thread_not_found"}
        return history_page(self.thread(channel, ts), p)
