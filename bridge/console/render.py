"""Block Kit for the bridge's own Slack messages: a thread's parent and failure notices.

Pure functions: what the console posts is decided here and tested without Slack.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from vocab.continuity import channel_label as label_of
from vocab.models import ConversationStatus
from vocab.mrkdwn import mrkdwn_escape

CLOSE_ACTION = "bridge_close"  # button on the parent message
REOPEN_ACTION = "bridge_reopen"  # button on the parent of a closed conversation
RETRY_ACTION = "bridge_retry"  # button on a failure notice (value: the outbox row id)
TEMPLATE_ACTION = "bridge_template"  # "Send template <name>" buttons (value: the name)
TEMPLATE_BUTTONS = 5
CLOSE_SHORTCUT = "close_conversation"  # message shortcut, any message of the thread
SECTION_MAX = 3000  # characters per section block


def channel_label(connector: str, address: str | None) -> tuple[str, str | None]:
    """The channel's name for agents, and the customer's number where it says who they are
    (SMS and WhatsApp through Twilio share one connector; the address tells them apart)."""
    if connector == "twilio" and address:
        channel = "whatsapp" if address.startswith("whatsapp:") else "sms"
        return label_of(channel), address.removeprefix("whatsapp:")
    return label_of(connector), None


def inbound_text(name: str, connector: str, username: str | None, body: str, *, first: bool,
                 edit: bool = False, address: str | None = None) -> str:
    """A customer's message in Slack; `body` is already mrkdwn (escaped or converted)."""
    who = mrkdwn_escape(name)
    if edit:
        return f":pencil2: *{who}* edited a message: {body}"
    if first:
        badge, number = channel_label(connector, address)
        handle = f" (@{mrkdwn_escape(username)})" if username else ""
        if number and number != name:
            handle += f" ({mrkdwn_escape(number)})"
        return f"*{who}*{handle} · {badge}\n{body}"
    return f"*{who}*: {body}"


def _sections(text: str) -> list[dict[str, Any]]:
    """Split long text over section blocks (3,000 characters each), at line ends if possible."""
    blocks: list[dict[str, Any]] = []
    while text:
        cut = len(text) if len(text) <= SECTION_MAX else text.rfind("\n", 0, SECTION_MAX)
        if cut <= 0:
            cut = SECTION_MAX
        part, text = text[:cut], text[cut:].lstrip("\n")
        if part.strip():
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": part}})
    return blocks[:45]  # Slack allows 50 blocks; the text field keeps the whole message


def status_line(status: ConversationStatus, closed_by: str | None,
                closed_at: float | None) -> str:
    if status is ConversationStatus.OPEN:
        return ":large_green_circle: *Open*"
    who = f" by {closed_by}" if closed_by else ""
    when = ""
    if closed_at is not None:
        fallback = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(closed_at))
        when = f" <!date^{int(closed_at)}^{{date_short_pretty}} {{time}}|{fallback}>"
    return f":white_circle: *Closed*{who}{when}"


def parent_message(body: str, status: ConversationStatus, *, conversation_id: int,
                   closed_by: str | None = None, closed_at: float | None = None,
                   previous_link: str | None = None,
                   joined_link: str | None = None) -> tuple[str, list[dict[str, Any]]]:
    """The thread's parent: the first message, the status, and a Close or Reopen button."""
    context = status_line(status, closed_by, closed_at)
    if previous_link:
        context += f" · continues <{previous_link}|an earlier conversation>"
    if joined_link:
        context += f" · joined <{joined_link}|the customer's other thread>"
    closed = status is ConversationStatus.CLOSED
    button: dict[str, Any] = {
        "type": "button",
        "action_id": REOPEN_ACTION if closed else CLOSE_ACTION,
        "text": {"type": "plain_text", "text": "Reopen" if closed else "Close"},
        "value": str(conversation_id),
    }
    blocks = [
        *_sections(body),
        {"type": "context", "elements": [{"type": "mrkdwn", "text": context}]},
        {"type": "actions", "block_id": "bridge_conversation", "elements": [button]},
    ]
    prefix = "[closed] " if closed else ""
    return prefix + body, blocks


def notice_message(text: str, retry_id: int | None,
                   templates: Sequence[str] = ()) -> tuple[str, list[dict[str, Any]] | None]:
    """A notice in the thread; a failed delivery carries a Retry button, a reply blocked by a
    closed window one button per approved template."""
    buttons: list[dict[str, Any]] = []
    if retry_id is not None:
        buttons.append({"type": "button", "action_id": RETRY_ACTION, "style": "primary",
                        "text": {"type": "plain_text", "text": "Retry"},
                        "value": str(retry_id)})
    for name in templates[:TEMPLATE_BUTTONS]:
        buttons.append({"type": "button", "action_id": f"{TEMPLATE_ACTION}:{name}"[:255],
                        "text": {"type": "plain_text", "text": f"Send template {name}"[:75]},
                        "value": name[:2000]})
    if not buttons:
        return text, None
    return text, [
        {"type": "section", "text": {"type": "mrkdwn", "text": text[:SECTION_MAX]}},
        {"type": "actions", "block_id": "bridge_retry" if retry_id is not None
         else "bridge_templates", "elements": buttons},
    ]
