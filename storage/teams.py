"""Teams (issue 19): tags on a conversation or its customer, and moving a conversation to another
team's channel.

A move is one transaction: the old thread is kept in `moved_threads`, the conversation takes the
new channel with no thread yet (the outbox posts a new parent there, and the first post's ts
becomes its thread), the assignee stays only if the target team has them, and the outbox gets,
in order on the conversation's Slack lane: the old thread's last line, the new parent, the new
thread's first notice.  A reply committed before the move is sent as usual; one written in the
old thread after it finds no conversation there and is not sent.
"""

from __future__ import annotations

from collections.abc import Collection

from storage.base import Moved, QueueEntry, Tagged
from storage.outbox_rows import add_event, add_outbox
from storage.ownership import record
from storage.query import Tx, execute, one, rows
from storage.targets import displayed
from vocab.events import NEW_PARENT, MovedAway, MovedHere
from vocab.models import ConversationId, OutboxKind

CUSTOMER_PREFIX = "customer:"


def split_tags(value: str | None) -> tuple[str, ...]:
    return tuple(sorted({word for word in (value or "").split() if word}))


def tag(conversation_id: int, word: str, add: bool, now: float) -> Tx[Tagged]:
    """Add or remove a tag; `customer:<word>` is the customer's.  Read FOR UPDATE, so tags
    added at once by two agents (or instances) are both kept."""
    row = yield from one("SELECT customer_id, tags FROM conversations WHERE id = ? {{for_update}}",
                         conversation_id)
    if row is None:
        return Tagged(found=False)
    on_customer = word.startswith(CUSTOMER_PREFIX)
    bare = word.removeprefix(CUSTOMER_PREFIX) if on_customer else word
    if on_customer:
        owner = yield from one("SELECT tags FROM customers WHERE id = ? {{for_update}}",
                               row["customer_id"])
        current = set(split_tags(None if owner is None else owner["tags"]))
    else:
        current = set(split_tags(row["tags"]))
    if (bare in current) == add:
        return Tagged(found=True, customer=on_customer, tags=tuple(sorted(current)))
    current = current | {bare} if add else current - {bare}
    text = " ".join(sorted(current))
    if on_customer:
        yield from execute("UPDATE customers SET tags = ? WHERE id = ?", text, row["customer_id"])
        # Every open thread of the customer shows it.
        found = yield from _open_of_customer(int(row["customer_id"]))
    else:
        yield from execute("UPDATE conversations SET tags = ?, updated_at = ? WHERE id = ?",
                           text, now, conversation_id)
        found = [conversation_id]
    redraws = []
    for conv in found:
        redraws.append((yield from add_outbox(OutboxKind.SLACK_STATUS, conv, None, "", now)))
    return Tagged(found=True, changed=True, customer=on_customer, tags=tuple(sorted(current)),
                  outbox=tuple(redraws))


def _open_of_customer(customer_id: int) -> Tx[list[int]]:
    found = yield from rows("SELECT id FROM conversations WHERE customer_id = ? AND"
                            " slack_thread_ts IS NOT NULL ORDER BY id", customer_id)
    return [int(r["id"]) for r in found]


def customer_tags(connector: str, address: str) -> Tx[frozenset[str]]:
    """The tags of the customer who writes from this address (none for a new one)."""
    row = yield from one("SELECT c.tags FROM identities i JOIN customers c ON c.id ="
                         " i.customer_id WHERE i.connector = ? AND i.address = ?",
                         connector, address)
    return frozenset(split_tags(None if row is None else row["tags"]))


def move(conversation_id: int, channel: str, team: str, from_team: str,
         members: Collection[str] | None, actor: str, now: float) -> Tx[Moved]:
    """Move the conversation to `team`'s `channel`.  `members`: the target team's (None:
    everybody), whom the assignee must be among to stay."""
    row = yield from one(
        "SELECT slack_channel, slack_thread_ts, assignee FROM conversations WHERE id = ?"
        " {{for_update}}", conversation_id)
    if row is None:
        return Moved(found=False)
    if row["slack_channel"] == channel:
        return Moved(found=True, already=True)
    if row["slack_thread_ts"] is None:
        return Moved(found=True, not_posted=True)  # its parent is not in Slack yet: try again
    old_channel, old_thread = str(row["slack_channel"]), str(row["slack_thread_ts"])
    holder = row["assignee"]
    keeps = holder is not None and (members is None or holder in members)
    yield from execute(
        "INSERT INTO moved_threads (slack_channel, slack_thread_ts, conversation_id, team, actor,"
        " moved_at) VALUES (?, ?, ?, ?, ?, ?)",
        old_channel, old_thread, conversation_id, team, actor, now)
    yield from execute(
        "UPDATE conversations SET slack_channel = ?, slack_thread_ts = NULL, assignee = ?,"
        " updated_at = ? WHERE id = ?", channel, holder if keeps else None, now, conversation_id)
    if holder is not None and not keeps:
        yield from record(conversation_id, "assignee", holder, None, actor, now)
    first = yield from one("SELECT id FROM messages WHERE conversation_id = ? AND"
                           " direction = 'in' ORDER BY id LIMIT 1", conversation_id)
    away = yield from add_event(conversation_id, MovedAway(
        actor=actor, team=team, channel=channel, thread_channel=old_channel,
        thread_ts=old_thread), now)
    parent = yield from add_outbox(OutboxKind.SLACK_POST, conversation_id,
                                   None if first is None else int(first["id"]),
                                   NEW_PARENT, now)
    here = yield from add_event(conversation_id, MovedHere(
        actor=actor, from_team=from_team, from_channel=old_channel, from_thread=old_thread,
        assignee_cleared=holder if holder is not None and not keeps else None), now)
    return Moved(found=True, changed=True, old_channel=old_channel, old_thread=old_thread,
                 outbox=(away, parent, here))


def moved_thread(channel: str, thread_ts: str) -> Tx[ConversationId | None]:
    """The conversation that moved away from this thread, if one did."""
    row = yield from one("SELECT conversation_id FROM moved_threads WHERE slack_channel = ? AND"
                         " slack_thread_ts = ?", channel, thread_ts)
    return None if row is None else ConversationId(int(row["conversation_id"]))


def queue() -> Tx[list[QueueEntry]]:
    """Open conversations (not joined into another), each with the customer's oldest message
    after the last reply by a person (an automatic answer answers nobody): the
    longest-waiting first, then those answered, oldest first."""
    found = yield from rows(
        "SELECT c.id, c.slack_channel, c.slack_thread_ts, c.assignee, c.connector, c.created_at,"
        " cu.display_name,"
        " (SELECT MIN(m.created_at) FROM messages m WHERE m.conversation_id = c.id"
        "   AND m.direction = 'in' AND m.id > COALESCE((SELECT MAX(o.id) FROM messages o"
        "   WHERE o.conversation_id = c.id AND o.direction = 'out' AND o.origin = 'person'),"
        "   0)) AS waiting_since"
        " FROM conversations c JOIN customers cu ON cu.id = c.customer_id"
        " WHERE c.status = 'open' AND c.merged_into IS NULL")
    due = yield from displayed()
    entries = [QueueEntry(
        conversation_id=ConversationId(int(r["id"])), slack_channel=r["slack_channel"],
        slack_thread_ts=r["slack_thread_ts"], assignee=r["assignee"],
        customer=str(r["display_name"] or ""), connector=str(r["connector"]),
        created_at=float(r["created_at"]),
        waiting_since=None if r["waiting_since"] is None else float(r["waiting_since"]),
        target=due.get(int(r["id"])))
        for r in found]
    return sorted(entries, key=lambda e: (e.waiting_since is None,
                                          e.waiting_since or e.created_at, e.conversation_id))
