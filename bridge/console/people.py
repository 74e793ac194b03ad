"""How the console shows a customer as a person: who they are on which channels, what came
before (a returning customer's new thread starts with it), a joined conversation's history,
and what `!link` found.  Pure functions, tested without Slack."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence

from bridge.console.notices import describe
from storage.base import CustomerCard, HistoryEntry
from vocab.continuity import channel_label
from vocab.models import Direction, Identity, IdentityId, Message
from vocab.mrkdwn import mrkdwn_escape

MESSAGE_MAX = 38_000  # Slack's text limit is 40,000 characters
LINE_MAX = 300  # one history line


def identity_line(identity: Identity) -> str:
    out = describe(identity.channel or identity.connector, identity.address,
                   identity.display_name, identity.username)
    if identity.unverified:
        out += " (unverified)"  # typed in the web chat's offline prompt: delivery only
    if identity.opted_out_at is not None:
        out += " (opted out)"
    return out


def identities_line(identities: Sequence[Identity]) -> str:
    return ", ".join(identity_line(i) for i in identities) or "none"


def _when(at: float) -> str:
    fallback = time.strftime("%Y-%m-%d", time.gmtime(at))
    return f"<!date^{int(at)}^{{date_short}}|{fallback}>"


def _clip(text: str, limit: int = LINE_MAX) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[:limit - 1] + "…"


def context_text(card: CustomerCard, earlier: Sequence[HistoryEntry],
                 link: Callable[[str, str | None], str]) -> str:
    """A returning customer's new thread: their channels and their last conversations
    (date, channel, first line, outcome, a link to each thread)."""
    lines = [f":bust_in_silhouette: *Returning customer*, known on "
             f"{identities_line(card.identities)}."]
    if earlier:
        lines.append("Earlier conversations:")
    for entry in earlier:
        conv = entry.conversation
        if conv.merged_into is not None:
            outcome = "joined another thread"
        elif conv.status != "closed":
            outcome = conv.status.value
        else:
            outcome = f"closed by {conv.closed_by}" if conv.closed_by else "closed"
        first = mrkdwn_escape(_clip(entry.first_line, 120)) or "_(no text)_"
        where = (f"<{link(conv.slack_thread_ts, conv.slack_channel)}|thread>"
                 if conv.slack_thread_ts else "no thread")
        lines.append(f"• {_when(conv.created_at)} · {channel_label(entry.channel)} · “{first}” "
                     f"· {outcome} · {where}")
    return "\n".join(lines)


def history_text(header: str, messages: Sequence[Message],
                 identities: Mapping[IdentityId, Identity]) -> str:
    """A joined conversation's messages, in the order they came, one line each."""
    lines = [header]
    for msg in messages:
        if msg.direction is Direction.NOTE:
            continue
        stamp = time.strftime("%Y-%m-%d %H:%M", time.gmtime(msg.platform_time or msg.created_at))
        ident = identities.get(msg.identity_id) if msg.identity_id is not None else None
        label = channel_label(ident.channel if ident is not None else msg.connector)
        who = msg.author_name or ("agent" if msg.direction is Direction.OUTBOUND else "customer")
        if msg.direction is Direction.OUTBOUND and msg.origin != "person":
            who = f"{who} (automatic)"  # the bridge's own answer (issue 21)
        elif msg.direction is Direction.OUTBOUND:
            who = f"{who} (reply)" if msg.author_name else f"<@{msg.author_slack_user}> (reply)"
        text = _clip(msg.text) or "_(no text)_"
        files = f" [+{len(msg.attachments)} file(s)]" if msg.attachments else ""
        lines.append(f"`{stamp}` {label} · *{mrkdwn_escape(who)}*: "
                     f"{mrkdwn_escape(text)}{files}")
    text = "\n".join(lines)
    if len(text) > MESSAGE_MAX:
        text = text[:MESSAGE_MAX].rsplit("\n", 1)[0] + "\n… (more in the earlier thread)"
    return text


def card_text(card: CustomerCard) -> str:
    name = mrkdwn_escape(card.display_name or "A customer")
    plural = "s" if card.conversations != 1 else ""
    state = ", one open" if card.open_conversation is not None else ""
    return (f"*{name}*: {identities_line(card.identities)} · {card.conversations} "
            f"conversation{plural}{state}")
