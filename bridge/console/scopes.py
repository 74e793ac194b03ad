"""Every Slack feature the bridge uses, and the scope each needs: the one table the app
manifest (`config/slack-app-manifest.yml`) is held against by the tests, both ways.

Add a row here with every new Web API method, event subscription or interactive feature; the
test fails until the manifest asks for its scope, and fails too for a scope no row needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["method", "event", "feature"]


@dataclass(frozen=True, slots=True)
class SlackNeed:
    kind: Kind  # a Web API method, an event subscription, or another feature
    name: str  # `chat.postMessage`, `message.channels`, `shortcut`, ...
    scope: str  # the bot scope it needs
    why: str


NEEDS: tuple[SlackNeed, ...] = (
    SlackNeed("method", "chat.postMessage", "chat:write", "customer messages and notices"),
    SlackNeed("method", "chat.update", "chat:write", "redraw a thread's parent, edits"),
    SlackNeed("method", "chat.postEphemeral", "chat:write", "answers only the agent sees"),
    SlackNeed("method", "reactions.add", "reactions:write", "delivery receipts on replies"),
    SlackNeed("method", "users.info", "users:read", "agents' names for replies and mentions"),
    SlackNeed("method", "files.getUploadURLExternal", "files:write", "customers' files in"),
    SlackNeed("method", "files.completeUploadExternal", "files:write", "customers' files in"),
    SlackNeed("method", "chat.delete", "chat:write",
              "an erased customer's thread: the bridge's own posts removed"),
    SlackNeed("method", "files.delete", "files:write",
              "an erased customer's thread: the files the bridge uploaded removed"),
    SlackNeed("method", "conversations.open", "im:write",
              "the Export customer data shortcut: a direct message to the admin who asked"),
    SlackNeed("feature", "export-shortcut", "commands",
              "the Export customer data message shortcut"),
    SlackNeed("method", "conversations.info", "channels:read",
              "check-config --online: the app is in the support channel"),
    SlackNeed("method", "conversations.history", "channels:history",
              "after a crash: was a thread's parent posted (message metadata)"),
    SlackNeed("method", "conversations.replies", "channels:history",
              "after a crash: was a reply or notice posted (message metadata)"),
    SlackNeed("feature", "url_private_download", "files:read", "files agents attach, out"),
    SlackNeed("method", "files.info", "files:read",
              "a canned reply's file, uploaded into the thread, then sent like an agent's"),
    SlackNeed("feature", "post-without-invite", "chat:write.public",
              "post in a public support channel the app was not invited to"),
    SlackNeed("event", "message.channels", "channels:history", "agents' replies, edits"),
    SlackNeed("event", "message.groups", "groups:history", "... in private channels"),
    SlackNeed("event", "reaction_added", "reactions:read",
              "reactions on a thread's parent: close, claim"),
    SlackNeed("event", "reaction_removed", "reactions:read",
              "removing the close reaction reopens"),
    SlackNeed("feature", "shortcut", "commands", "the Close conversation message shortcut"),
    # Canned replies (issue 22): posted under the agent's name and picture; the shortcuts
    # (`commands`, above) open modals (views.open / views.update need no scope).
    SlackNeed("feature", "post-as-agent", "chat:write.customize",
              "a canned reply is posted under the agent's name and picture"),
    # The queue (issue 19): app_home_opened (and views.publish, below) need no scope; the
    # manifest turns the Home tab on and subscribes to the event.
    SlackNeed("event", "app_home_opened", "", "the Home tab: the agent's queue"),
)
# Methods that need no scope (token checks), and the Socket Mode call made with the app-level
# token (`connections:write`, granted on the token, not in the manifest's bot scopes).
NO_BOT_SCOPE: frozenset[str] = frozenset({"auth.test", "apps.connections.open",
                                          "views.publish", "views.open", "views.update"})


def bot_scopes() -> set[str]:
    return {need.scope for need in NEEDS if need.scope}


def events() -> set[str]:
    return {need.name for need in NEEDS if need.kind == "event"}


def method_scopes() -> dict[str, str]:
    return {need.name: need.scope for need in NEEDS if need.kind == "method"}
