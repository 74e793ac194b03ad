"""The store's events (`vocab/events.py`) as agents read them in the thread: Slack mrkdwn.

Pure functions, tested without Slack.  A customer's name or address is their text: escaped.
Actors (`<@U…>`, "bridge", "customer") are the console's own and shown as they are.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, tzinfo

from bridge.console.due import missed_text, warned_text
from bridge.console.render import when
from vocab.continuity import channel_label
from vocab.events import (
    AgentLinked,
    AssigneeChanged,
    AutoAnswered,
    ChannelSwitched,
    ContinuesElsewhere,
    ConversationJoined,
    EmailLinked,
    Event,
    HandoffLinked,
    HandoffRefused,
    MovedAway,
    MovedHere,
    NotDelivered,
    OptOutChanged,
    PersonRequested,
    PhoneLinked,
    ReopenedByCustomer,
    ReplyByEmail,
    ReturningCustomer,
    StatusChanged,
    StatusMoved,
    TargetMissed,
    TargetWarned,
    Unlinked,
    Who,
)
from vocab.models import DeliveryState
from vocab.mrkdwn import mrkdwn_escape

# A delivery receipt, as a reaction on the agent's reply in the thread.
REACTIONS = {DeliveryState.DELIVERED: "white_check_mark", DeliveryState.READ: "eyes",
             DeliveryState.FAILED: "x"}
_REFUSED = {
    "unknown": "the bridge never issued: not linked to anyone. If they say an agent sent it, "
               "send a new one.",
    "used": "was already used: not linked. Handoff codes work once; send a new one if this "
            "is the same customer.",
    "expired": "has expired: not linked. Send a new one with the handoff command.",
}


def reaction(payload: str) -> str:
    """A `slack_reaction` row's emoji: its payload is the receipt's state (rows written before
    the store kept states carry the emoji name itself)."""
    try:
        return REACTIONS[DeliveryState(payload)]
    except (ValueError, KeyError):
        return payload


def describe(channel: str, address: str, name: str = "", username: str | None = None) -> str:
    """An identity as agents read it: `WhatsApp +1415…`, `Telegram @ann_k`, `Messenger Ann
    Kim`, `Email a@b.c` (names escaped: a customer's name is their text)."""
    if channel in ("sms", "whatsapp", "email"):
        where = address.removeprefix("whatsapp:")
    elif username:
        where = f"@{username}"
    else:
        where = name
    return f"{channel_label(channel)} {mrkdwn_escape(where)}".strip()


def who(identity: Who) -> str:
    return describe(identity.channel, identity.address, identity.name, identity.username)


def whom(identities: Sequence[Who]) -> str:
    return ", ".join(who(i) for i in identities) or "no identity"


def _mention(user: str) -> str:
    """The agent who issued a handoff code (codes issued by older versions kept the mention)."""
    return user if user.startswith("<") else f"<@{user}>"


def notice_text(event: Event, zone: tzinfo = UTC) -> str:
    """The notice's text.  `ReturningCustomer`, `ConversationJoined` and `ContinuesElsewhere`
    are completed when posted, with what the store holds then (see the Slack side of
    delivery)."""
    match event:
        case OptOutChanged(opted_out=True):
            return (":no_bell: The customer asked not to receive messages here (STOP): the "
                    "bridge sends nothing more on this channel until they write START.")
        case OptOutChanged():
            return ":bell: The customer resumed messages (START): replies go out again."
        case HandoffRefused():
            name = mrkdwn_escape(event.name) or "The customer"
            return f":no_entry: {name} sent a handoff code that {_REFUSED[event.reason]}"
        case HandoffLinked():
            name = mrkdwn_escape(event.name) or "The customer"
            return (f":link: {name} continued on {channel_label(event.channel)} with the "
                    f"handoff code {_mention(event.issued_by)} sent, and joined this customer "
                    f"(link {event.link_id}; undo with the unlink command).")
        case PhoneLinked():
            return (f":link: Linked automatically: the same phone number {event.phone} wrote "
                    f"on {channel_label(event.channel)} (link {event.link_id}; an agent can "
                    "undo it with the unlink command).")
        case EmailLinked():
            return (f":link: Linked automatically: the verified email {event.email} wrote on "
                    f"{channel_label(event.channel)} (link {event.link_id}; an agent can undo "
                    "it with the unlink command).")
        case ReplyByEmail(taken=True):
            return (f":warning: The visitor asked for the answer by email to {event.email} "
                    "(unverified), an address another customer writes from: nothing was "
                    "linked, and replies stay in the web chat.")
        case ReplyByEmail():
            return (f":envelope: Replies also go by email to {event.email} (unverified, left "
                    "while offline); the customer's answer by email comes back here.")
        case ChannelSwitched():
            return (f":twisted_rightwards_arrows: Now writing on {who(event.now)}; replies go "
                    f"there (before: {who(event.before)}).")
        case ReopenedByCustomer():
            return ":arrows_counterclockwise: Reopened: the customer wrote again."
        case StatusChanged(closed=True):
            return f":lock: Closed by {event.actor}."
        case StatusChanged():
            return f":unlock: Reopened by {event.actor}."
        case StatusMoved():
            return _moved(event, zone)
        case AssigneeChanged():
            return _assigned(event)
        case ReturningCustomer():
            return ""
        case ConversationJoined():
            return (f":link: The conversation of {whom(event.who)} joined this thread (link "
                    f"{event.link_id}). Its history, in order:")
        case ContinuesElsewhere():
            return (":link: This conversation continues in another thread, with the "
                    f"customer's other channels (link {event.link_id}):")
        case AgentLinked():
            return (f":link: {event.actor} linked {whom(event.who)} to this customer (link "
                    f"{event.link_id}; undo with the unlink command).")
        case Unlinked():
            return _unlinked(event)
        case NotDelivered():
            why = event.error or "the platform gave no reason"
            text = f":warning: Not delivered to the customer: {why}"
            if event.templates:  # a closed window: offer what may still be sent
                text += ". Send an approved template instead:"
            return text
        case MovedAway():
            return (f":arrow_right: Transferred to team *{event.team}* (<#{event.channel}>) by "
                    f"{event.actor}. This thread is closed for replies: nothing written here "
                    "reaches the customer; continue in the new thread.")
        case AutoAnswered():
            return _auto(event)
        case PersonRequested():
            who_ = " ".join(f"<@{user}>" for user in event.mentions) or "<!here>"
            return (f":raising_hand: The customer asked for a person: {who_}, please answer. "
                    "The FAQ bot stays quiet in this conversation from now on.")
        case TargetWarned():
            return warned_text(event, zone)
        case TargetMissed():
            return missed_text(event, None, zone)
        case MovedHere():
            cleared = (f" <@{event.assignee_cleared}> is not in this team and is no longer "
                       "assigned." if event.assignee_cleared else "")
            return (f":arrow_left: Transferred from team *{event.from_team}* "
                    f"(<#{event.from_channel}>) by {event.actor}.{cleared}")


_AUTO = {"closed": "closed reply, out of hours", "greeting": "greeting",
         "faq": "FAQ answer", "handover": "handing over to a person"}


def _auto(event: AutoAnswered) -> str:
    """An automatic answer, as sent by the bridge (not an agent's response)."""
    head = f":robot_face: Sent by the bridge ({_AUTO[event.origin]})"
    if event.origin == "faq" and event.score is not None:
        head += (f", matched \u201c{mrkdwn_escape(event.question)}\u201d with score "
                 f"{event.score:.0f}")
    quoted = "\n".join(f"> {line}" for line in mrkdwn_escape(event.text).splitlines())
    return f"{head}:\n{quoted}"


def _unlinked(event: Unlinked) -> str:
    said = f":scissors: Unlinked by {event.actor} (link {event.link_id}): "
    replies = "no channel" if event.replies is None else who(event.replies)
    if event.scope == "own":
        return f"{said}this conversation is on its own again; replies here go to {replies}."
    if event.scope == "alone":
        return (f"{said}this conversation is {whom(event.who)}'s alone again; replies here go "
                f"to {replies}. Messages of the other customer already in this thread stay.")
    return (f"{said}{whom(event.who)} is a separate customer again. Their messages already in "
            "this thread stay; new ones start their own.")


def _moved(event: StatusMoved, zone: tzinfo) -> str:
    if event.status == "pending":
        return (f":hourglass_flowing_sand: Pending: waiting for the customer (set by "
                f"{event.actor}). Their next message opens it again.")
    if event.status == "snoozed":
        until = when(event.until, zone) if event.until is not None else "later"
        return (f":zzz: Snoozed until {until} by {event.actor}: it opens again then, or when "
                "the customer writes.")
    if event.actor == "bridge":
        return ":alarm_clock: Snooze over: the conversation is open again."
    if event.actor == "customer":
        was = "snoozed" if event.before == "snoozed" else "pending"
        return f":arrows_counterclockwise: Open again: the customer wrote (it was {was})."
    return f":large_green_circle: Opened by {event.actor} (it was {event.before or 'open'})."


def _assigned(event: AssigneeChanged) -> str:
    if event.assignee is None:
        return f":bust_in_silhouette: Unassigned by {event.actor} (was <@{event.previous}>)."
    to = f"<@{event.assignee}>"
    if event.how == "claim":
        said = f"{to} claimed the conversation"
    elif event.how == "first_reply":
        said = f"{to} replied first and is assigned"
    else:
        said = f"Assigned to {to} by {event.actor}"
    return f":bust_in_silhouette: {said}" + (
        f" (was <@{event.previous}>)." if event.previous else ".")
