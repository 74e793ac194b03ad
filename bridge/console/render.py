"""Block Kit for the bridge's own Slack messages: a thread's parent and failure notices.

Pure functions: what the console posts is decided here and tested without Slack.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any

from vocab.continuity import channel_label as label_of
from vocab.models import Conversation, ConversationStatus
from vocab.mrkdwn import mrkdwn_escape

CLOSE_ACTION = "bridge_close"  # button on the parent message
REOPEN_ACTION = "bridge_reopen"  # button on the parent of a closed conversation
CLAIM_ACTION = "bridge_claim"  # button on the parent while nobody holds the conversation
ASSIGN_ACTION = "bridge_assign"  # users_select on the parent (selected_user: the assignee)
TRANSFER_PICKER = "bridge_transfer"  # static_select on the parent: another team
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


def when(at: float, zone: tzinfo = UTC) -> str:
    """A moment as Slack shows it to each reader in their own time zone; the fallback text (in
    notifications, and where Slack cannot) is in the team's zone."""
    local = datetime.fromtimestamp(at, zone)
    fallback = local.strftime("%a %Y-%m-%d %H:%M ") + (local.tzname() or "")
    return f"<!date^{int(at)}^{{date_short_pretty}} {{time}}|{fallback.strip()}>"


@dataclass(frozen=True)
class Standing:
    """Where a conversation stands, as its parent shows it."""

    status: ConversationStatus
    closed_by: str | None = None
    closed_at: float | None = None
    status_at: float | None = None  # when it last changed
    status_by: str | None = None
    snooze_until: float | None = None
    assignee: str | None = None  # a Slack user id

    @classmethod
    def of(cls, conv: Conversation) -> Standing:
        return cls(conv.status, conv.closed_by, conv.closed_at, conv.status_at, conv.status_by,
                   conv.snooze_until, conv.assignee)


def status_line(s: Standing, zone: tzinfo = UTC) -> str:
    """`Open`, `Pending`, `Snoozed until <time>`, `Closed`, with an emoji and since when."""
    since = f" since {when(s.status_at, zone)}" if s.status_at is not None else ""
    if s.status is ConversationStatus.OPEN:
        return f":large_green_circle: *Open*{since}"
    if s.status is ConversationStatus.PENDING:
        return f":hourglass_flowing_sand: *Pending* (waiting for the customer){since}"
    if s.status is ConversationStatus.SNOOZED:
        until = when(s.snooze_until, zone) if s.snooze_until is not None else "later"
        return f":zzz: *Snoozed until {until}*{since}"
    who = f" by {s.closed_by}" if s.closed_by else ""
    at = s.closed_at if s.closed_at is not None else s.status_at
    return f":white_circle: *Closed*{who}{' ' + when(at, zone) if at is not None else ''}"


def assignee_line(assignee: str | None) -> str:
    return f":bust_in_silhouette: Assignee: <@{assignee}>" if assignee else "Unassigned"


def parent_message(body: str, standing: Standing, *, conversation_id: int,
                   previous_link: str | None = None, joined_link: str | None = None,
                   zone: tzinfo = UTC, tags: Sequence[str] = (),
                   transfer: Sequence[dict[str, Any]] = (),
                   ratings: Sequence[str] = (),
                   due: str | None = None) -> tuple[str, list[dict[str, Any]]]:
    """The thread's parent: the first message, the status and assignee, and the buttons:
    Close or Reopen, Claim (while nobody holds it), and an Assign user picker."""
    status = standing.status
    context = f"{status_line(standing, zone)} · {assignee_line(standing.assignee)}"
    if due and status is not ConversationStatus.CLOSED:  # a response-time target's line
        context += f" · {due}"
    if previous_link:
        context += f" · continues <{previous_link}|an earlier conversation>"
    if joined_link:
        context += f" · joined <{joined_link}|the customer's other thread>"
    if tags:
        context += " · :label: " + " ".join(f"`{mrkdwn_escape(t)}`" for t in tags)
    for rating in ratings:  # survey answers (issue 23), e.g. ":star: 4/5"
        context += f" · {rating}"
    closed = status is ConversationStatus.CLOSED
    value = str(conversation_id)
    elements: list[dict[str, Any]] = [{
        "type": "button",
        "action_id": REOPEN_ACTION if closed else CLOSE_ACTION,
        "text": {"type": "plain_text", "text": "Reopen" if closed else "Close"},
        "value": value,
    }]
    if standing.assignee is None:
        elements.append({"type": "button", "action_id": CLAIM_ACTION, "value": value,
                         "text": {"type": "plain_text", "text": "Claim"}})
    picker: dict[str, Any] = {"type": "users_select", "action_id": ASSIGN_ACTION,
                              "placeholder": {"type": "plain_text", "text": "Assign"}}
    if standing.assignee:
        picker["initial_user"] = standing.assignee
    elements.append(picker)
    if transfer:  # the other teams (see bridge/console/transfer.py)
        elements.append({"type": "static_select", "action_id": TRANSFER_PICKER,
                         "placeholder": {"type": "plain_text", "text": "Transfer"},
                         "options": list(transfer)})
    blocks = [
        *_sections(body),
        {"type": "context", "elements": [{"type": "mrkdwn", "text": context}]},
        {"type": "actions", "block_id": "bridge_conversation", "elements": elements},
    ]
    prefix = {ConversationStatus.CLOSED: "[closed] ", ConversationStatus.PENDING: "[pending] ",
              ConversationStatus.SNOOZED: "[snoozed] "}.get(status, "")
    # The text (where blocks are not shown) says it too once there is more to say than "open".
    if standing.assignee is not None or status is not ConversationStatus.OPEN or due:
        body += f"\n{status_line(standing, zone)} · {assignee_line(standing.assignee)}"
        if due and status is not ConversationStatus.CLOSED:
            body += f" · {due}"
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
