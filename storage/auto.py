"""Automatic answers (issue 21): what the bridge decides from, and the answer itself.

An answer is a message like an agent's reply (direction 'out', delivered by a `customer_send`
row through the customer's channel rules), but with `origin` 'auto' or 'faq' and no Slack
author, so no report counts it as an agent's response; the thread is told with an
`AutoAnswered` event.  The `auto_answers` row, unique per conversation, kind and period, is
written in the same transaction: a second message in one closed period, or a redelivered
one, finds it and sends nothing.
"""

from __future__ import annotations

from storage.base import AutoFacts
from storage.outbox_rows import add_event, add_outbox
from storage.query import Tx, execute, insert, one, rows
from storage.reads import get_conversation
from vocab.events import Event
from vocab.models import ConversationId, OutboxItem, OutboxKind

BRIDGE_AUTHOR = "bridge"


def auto_facts(conversation_id: int, message_id: int) -> Tx[AutoFacts]:
    """What the rules of automatic answers look at, for the customer message `message_id`,
    in one read: the conversation, whether its identity opted out, and the history facts.
    The channel's recent waits (a heavier query) are left to `recent_waits`, read only when
    a text is rendered while open."""
    found = yield from get_conversation(conversation_id)
    if found is None:
        return AutoFacts(last_agent_reply_at=None, person_requested=False,
                         customer_wrote_since_faq=True, first_message=False, assignee=None)
    opted = yield from one("SELECT opted_out_at FROM identities WHERE id = ?",
                           found.identity_id)
    agent = yield from one(
        "SELECT MAX(created_at) AS at FROM messages WHERE conversation_id = ? AND"
        " direction = 'out' AND origin = 'person' AND author_slack_user IS NOT NULL",
        conversation_id)
    person = yield from one("SELECT id FROM auto_answers WHERE conversation_id = ? AND"
                            " kind = 'person'", conversation_id)
    # The bot's latest answer, and whether the customer wrote after it (this message counts:
    # a question after the answer may be answered; one that came in before the answer was
    # stored, in a burst, may not, so two answers never follow each other).
    faq = yield from one("SELECT MAX(message_id) AS id FROM auto_answers WHERE"
                         " conversation_id = ? AND kind = 'faq'", conversation_id)
    wrote_since = True
    if faq is not None and faq["id"] is not None:
        later = yield from one(
            "SELECT COUNT(*) AS n FROM messages WHERE conversation_id = ? AND direction = 'in'"
            " AND id > ? AND id <= ?", conversation_id, int(faq["id"]), message_id)
        wrote_since = later is not None and int(later["n"]) > 0
    earlier = yield from one(  # any earlier customer message (not a count of them all)
        "SELECT id FROM messages WHERE conversation_id = ? AND direction = 'in'"
        " AND id < ? LIMIT 1", conversation_id, message_id)
    return AutoFacts(
        last_agent_reply_at=None if agent is None or agent["at"] is None else float(agent["at"]),
        person_requested=person is not None,
        customer_wrote_since_faq=wrote_since,
        first_message=earlier is None,
        assignee=found.assignee,
        conversation=found,
        opted_out=opted is not None and opted["opted_out_at"] is not None,
    )


def recent_waits(channel: str | None, recent: int = 20) -> Tx[tuple[tuple[float, float], ...]]:
    """(opened, first reply by a person) of the channel's latest conversations that had one:
    the greeting's expected wait."""
    found = yield from rows(
        "SELECT c.id, c.created_at, MIN(m.created_at) AS answered FROM conversations c"
        " JOIN messages m ON m.conversation_id = c.id AND m.direction = 'out'"
        " AND m.origin = 'person' AND m.author_slack_user IS NOT NULL"
        " WHERE c.slack_channel = ? GROUP BY c.id, c.created_at ORDER BY c.id DESC LIMIT ?",
        channel, recent)
    return tuple((float(r["created_at"]), float(r["answered"])) for r in found
                 if r["answered"] is not None)


def send_auto(conversation_id: int, kind: str, period: str, text: str, origin: str,
              event: Event, now: float, score: float | None = None,
              payload: str = "") -> Tx[list[OutboxItem]]:
    """Queue one automatic answer, unless this conversation already had this kind in this
    period (then nothing: an empty list).  `payload`: the `customer_send` row's (choices)."""
    added = yield from execute(
        "INSERT INTO auto_answers (conversation_id, kind, period, score, created_at)"
        " VALUES (?, ?, ?, ?, ?) ON CONFLICT (conversation_id, kind, period) DO NOTHING",
        conversation_id, kind, period, score, now)
    if not added:
        return []
    conv = yield from one("SELECT connector, identity_id FROM conversations WHERE id = ?",
                          conversation_id)
    if conv is None:
        return []
    message_id = yield from insert(
        "INSERT INTO messages (conversation_id, direction, connector, text, attachments,"
        " author_name, state, created_at, identity_id, origin)"
        " VALUES (?, 'out', ?, ?, '[]', ?, 'queued', ?, ?, ?)",
        conversation_id, str(conv["connector"]), text, BRIDGE_AUTHOR, now,
        int(conv["identity_id"]), origin)
    yield from execute("UPDATE auto_answers SET message_id = ? WHERE conversation_id = ? AND"
                       " kind = ? AND period = ?", message_id, conversation_id, kind, period)
    notice = yield from add_event(conversation_id, event, now, message_id)
    send = yield from add_outbox(OutboxKind.CUSTOMER_SEND, conversation_id, message_id, payload,
                                 now)
    return [notice, send]


def person_requested(conversation_id: int, event: Event, now: float) -> Tx[list[OutboxItem]]:
    """The customer asked for a person: recorded once; the thread hears it once."""
    added = yield from execute(
        "INSERT INTO auto_answers (conversation_id, kind, period, created_at)"
        " VALUES (?, 'person', '', ?) ON CONFLICT (conversation_id, kind, period) DO NOTHING",
        conversation_id, now)
    if not added:
        return []
    return [(yield from add_event(ConversationId(conversation_id), event, now))]
