"""One customer across channels, in the store: links between customers (made and undone),
phone-number claims, and handoff codes.  Transactions over `storage/query.py`, like
`storage/transactions.py`, which calls them from `ingest_inbound`.

A link joins customer `gone` into customer `keep`: every identity and conversation of `gone`
moves to `keep`, and what moved is written on the link, so `undo_link` can move exactly that
back.  When both had an open conversation, one joins the other: it is closed with
`merged_into` set, its history is posted into the remaining thread (in order), and its own
thread points there.  Nothing is deleted or rewritten, so an undo restores both threads.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from storage.base import LinkResult
from storage.outbox_rows import add_event, add_outbox, seen_slack_event
from storage.ownership import record
from storage.privacy import audit
from storage.query import Row, Tx, execute, insert, one, rows
from vocab.continuity import channel_label
from vocab.events import (
    AgentLinked,
    ContinuesElsewhere,
    ConversationJoined,
    Event,
    HandoffLinked,
    HandoffRefused,
    Unlinked,
    Who,
)
from vocab.models import CustomerId, IdentityId, LinkMethod, OutboxItem, OutboxKind


def _marks(values: Sequence[object]) -> str:
    return ", ".join("?" for _ in values)


def _who(row: Row) -> Who:
    return Who(channel=str(row["channel"]), address=str(row["address"]),
               name=str(row["display_name"]), username=row["username"])


def identities_of(identity_ids: Sequence[int]) -> Tx[tuple[Who, ...]]:
    if not identity_ids:
        return ()
    found = yield from rows(
        f"SELECT channel, address, display_name, username FROM identities WHERE id IN"
        f" ({_marks(identity_ids)}) ORDER BY id", *identity_ids)
    return tuple(_who(r) for r in found)


def _notice(conversation_id: int, event: Event, now: float) -> Tx[OutboxItem]:
    return (yield from add_event(conversation_id, event, now))


def _status(conversation_id: int, now: float) -> Tx[OutboxItem]:
    return (yield from add_outbox(OutboxKind.SLACK_STATUS, conversation_id, None, "", now))


def open_conversation(customer_id: int) -> Tx[int | None]:
    row = yield from one(
        "SELECT id FROM conversations WHERE customer_id = ? AND status <> 'closed' AND"
        " merged_into IS NULL ORDER BY id DESC LIMIT 1", customer_id)
    return None if row is None else int(row["id"])


@dataclass(frozen=True)
class Merge:
    """What `merge_customers` did: the link, where the joined history now lives, and the
    outbox rows it queued."""

    link_id: int
    target: int | None  # the one open conversation left, if either side had one
    outbox: list[OutboxItem]


def merge_customers(keep: int, gone: int, method: LinkMethod, evidence: str, actor: str,
                    now: float, prefer: int | None = None) -> Tx[Merge]:
    """Join customer `gone` into `keep`.  `prefer`: the conversation that stays open when both
    have one (where the agent or the customer acted); otherwise `keep`'s."""
    # Both customers locked (PostgreSQL) before their open conversations are read: a message
    # of `keep` opening one meanwhile is seen, never left as a second open conversation.
    yield from rows("SELECT id FROM customers WHERE id IN (?, ?) ORDER BY id {{for_update}}",
                    keep, gone)
    identities = [int(r["id"]) for r in (yield from rows(
        "SELECT id FROM identities WHERE customer_id = ? ORDER BY id", gone))]
    conversations = [int(r["id"]) for r in (yield from rows(
        "SELECT id FROM conversations WHERE customer_id = ? ORDER BY id", gone))]
    open_gone = yield from open_conversation(gone)
    open_keep = yield from open_conversation(keep)
    yield from execute("UPDATE identities SET customer_id = ? WHERE customer_id = ?", keep, gone)
    yield from execute("UPDATE conversations SET customer_id = ? WHERE customer_id = ?",
                       keep, gone)
    out: list[OutboxItem] = []
    merged: int | None = None
    target = open_keep if open_keep is not None else open_gone
    if open_keep is not None and open_gone is not None:
        target, merged = ((open_gone, open_keep) if prefer == open_gone
                          else (open_keep, open_gone))
        was = yield from one("SELECT status FROM conversations WHERE id = ?", merged)
        yield from execute(
            "UPDATE conversations SET merged_into = ?, status = 'closed', closed_at = ?,"
            " closed_by = ?, updated_at = ?, status_at = ?, status_by = ?, snooze_until = NULL"
            " WHERE id = ?", target, now, actor, now, now, actor, merged)
        yield from record(merged, "status", None if was is None else str(was["status"]),
                          "closed", actor, now)
        # Replies in the joined thread go where the customer wrote last, on either side.
        latest = yield from one(
            "SELECT identity_id, last_inbound_at FROM conversations WHERE id IN (?, ?)"
            " ORDER BY COALESCE(last_inbound_at, created_at) DESC, id DESC LIMIT 1",
            target, merged)
        assert latest is not None
        yield from answer_on(target, int(latest["identity_id"]), now)
        yield from execute("UPDATE conversations SET last_inbound_at = ? WHERE id = ?",
                           latest["last_inbound_at"], target)
    link_id = yield from insert(
        "INSERT INTO links (customer_id, other_customer_id, method, evidence, actor, moved,"
        " created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        keep, gone, method.value, evidence, actor,
        json.dumps({"identities": identities, "conversations": conversations,
                    "merged": merged, "target": target}), now)
    yield from audit(actor, "link", keep, now, other=gone, detail=f"method {method.value}"
                     + (", conversations joined" if merged is not None else ""))
    if merged is not None and target is not None:
        who = yield from identities_of(identities)
        out.append((yield from _notice(target, ConversationJoined(
            who=who, link_id=link_id, merged=merged), now)))
        out.append((yield from _notice(merged, ContinuesElsewhere(
            link_id=link_id, target=target), now)))
        out.append((yield from _status(merged, now)))
    return Merge(link_id, target, out)


def undo_link(customer_id: int, link_id: int | None, actor: str, now: float,
              where: int | None = None) -> Tx[LinkResult]:
    """Undo a link of this customer (the latest still in force when `link_id` is None).
    `where`: the thread the agent asked in, told when no thread of this customer is."""
    if link_id is None:
        row = yield from one(
            "SELECT id FROM links WHERE customer_id = ? AND undone_at IS NULL"
            " ORDER BY id DESC LIMIT 1", customer_id)
        if row is None:
            return LinkResult(found=False)
        link_id = int(row["id"])
    link = yield from one(
        "SELECT customer_id, other_customer_id, moved, undone_at FROM links"
        " WHERE id = ? {{for_update}}", link_id)
    if link is None or int(link["customer_id"]) != customer_id:
        return LinkResult(found=False, link_id=link_id)
    if link["undone_at"] is not None:
        return LinkResult(found=True, already=True, link_id=link_id)
    keep, gone = int(link["customer_id"]), int(link["other_customer_id"])
    moved = json.loads(str(link["moved"]))
    identities: list[int] = moved["identities"]
    conversations: list[int] = moved["conversations"]
    merged, target = moved.get("merged"), moved.get("target")
    if identities:
        yield from execute(f"UPDATE identities SET customer_id = ? WHERE customer_id = ? AND id"
                           f" IN ({_marks(identities)})", gone, keep, *identities)
    if conversations:
        yield from execute(f"UPDATE conversations SET customer_id = ? WHERE customer_id = ?"
                           f" AND id IN ({_marks(conversations)})", gone, keep, *conversations)
    # Each conversation answers on its own customer's channels again (a joined thread
    # answered where the customer wrote last, on either side).
    yield from _answer_on_own(keep, gone, now)
    out: list[OutboxItem] = []
    who = yield from identities_of(identities)
    moved_back = set(conversations)
    if merged is not None:
        reopened = yield from execute(
            "UPDATE conversations SET merged_into = NULL, status = 'open', closed_at = NULL,"
            " closed_by = NULL, updated_at = ?, status_at = ?, status_by = ?"
            " WHERE id = ? AND merged_into = ?",
            now, now, actor, merged, target)
        if reopened:
            yield from record(merged, "status", "closed", "open", actor, now)
            replies = yield from _replies_to(merged)
            out.append((yield from _status(merged, now)))
            out.append((yield from _notice(merged, Unlinked(
                actor=actor, link_id=link_id, scope="own", replies=replies), now)))
    yield from execute("UPDATE links SET undone_at = ?, undone_by = ? WHERE id = ?",
                       now, actor, link_id)
    yield from audit(actor, "unlink", keep, now, other=gone, detail=f"link {link_id}")
    if target is not None and target in moved_back:
        # The thread that stayed open was theirs (where they acted): it is theirs again.
        replies = yield from _replies_to(target)
        out.append((yield from _notice(target, Unlinked(
            actor=actor, link_id=link_id, scope="alone", who=who, replies=replies), now)))
    here = target if target is not None and target not in moved_back else None
    if here is None and (merged is None or merged in moved_back):
        # Nothing of this customer's was joined: tell their open thread, or the agent's.
        here = (yield from open_conversation(keep)) or where
    if here is not None and here not in moved_back:
        out.append((yield from _notice(int(here), Unlinked(
            actor=actor, link_id=link_id, scope="separate", who=who), now)))
    return LinkResult(found=True, link_id=link_id, outbox=tuple(out))


def answer_on(conversation_id: int, identity_id: int, now: float) -> Tx[None]:
    """Replies of this conversation go to this identity (its connector and address are the
    conversation's copy of the identity's, read by every send)."""
    yield from execute(
        "UPDATE conversations SET identity_id = i.id, connector = i.connector,"
        " address = i.address, updated_at = ? FROM identities i WHERE i.id = ?"
        " AND conversations.id = ?", now, identity_id, conversation_id)


def _answer_on_own(keep: int, gone: int, now: float) -> Tx[None]:
    """Conversations of these customers that answer on an identity of someone else answer on
    their own customer's latest identity instead."""
    wrong = yield from rows(
        "SELECT c.id, c.customer_id FROM conversations c JOIN identities i ON"
        " i.id = c.identity_id WHERE c.customer_id IN (?, ?) AND i.customer_id <> c.customer_id",
        keep, gone)
    for conv in wrong:
        own = yield from one(
            "SELECT id FROM identities WHERE customer_id = ?"
            " ORDER BY COALESCE(last_inbound_at, created_at) DESC, id DESC LIMIT 1",
            conv["customer_id"])
        if own is not None:
            yield from answer_on(int(conv["id"]), int(own["id"]), now)


def _replies_to(conversation_id: int) -> Tx[Who | None]:
    row = yield from one(
        "SELECT i.channel, i.address, i.display_name, i.username FROM conversations c JOIN"
        " identities i ON i.id = c.identity_id WHERE c.id = ?", conversation_id)
    return None if row is None else _who(row)


# -- phone numbers -------------------------------------------------------------------------
def claim_phone(identity_id: int, customer_id: int, phone: str,
                now: float) -> Tx[tuple[int, Merge | None]]:
    """This identity proved `phone`.  The first time, join the customer of any other
    identity that proved the same number (unless an agent undid such a link before); the
    thread the customer is writing in stays open.  Returns the customer the identity now
    belongs to, and the merge if one happened."""
    added = yield from execute(
        "INSERT INTO identity_claims (kind, value, identity_id, created_at) VALUES"
        " ('phone', ?, ?, ?) ON CONFLICT (kind, value, identity_id) DO NOTHING",
        phone, identity_id, now)
    if not added:
        return customer_id, None
    other = yield from one(
        "SELECT i.customer_id FROM identity_claims c JOIN identities i ON i.id = c.identity_id"
        " WHERE c.kind = 'phone' AND c.value = ? AND i.customer_id <> ? ORDER BY i.id LIMIT 1",
        phone, customer_id)
    if other is None:
        return customer_id, None
    refused = yield from one("SELECT 1 FROM links WHERE method = 'phone' AND evidence = ?"
                             " AND undone_at IS NOT NULL LIMIT 1", phone)
    if refused is not None:
        return customer_id, None  # an agent separated them once: no automatic link again
    prefer = yield from open_conversation(customer_id)
    merge = yield from merge_customers(int(other["customer_id"]), customer_id, LinkMethod.PHONE,
                                       phone, "bridge", now, prefer)
    return int(other["customer_id"]), merge


def claim_email(identity_id: int, customer_id: int, email: str,
                now: float) -> Tx[tuple[int, Merge | None]]:
    """This identity is a verified user with `email` (the web chat's identify): the first
    time, join the customer of another identity that verified the same address or writes
    from it on email (unless an agent undid such a link before).  An address a visitor only
    typed (an `unverified` identity, the web chat's offline prompt) is never such evidence."""
    added = yield from execute(
        "INSERT INTO identity_claims (kind, value, identity_id, created_at) VALUES"
        " ('email', ?, ?, ?) ON CONFLICT (kind, value, identity_id) DO NOTHING",
        email, identity_id, now)
    if not added:
        return customer_id, None
    other = yield from one(
        "SELECT i.customer_id FROM identities i WHERE i.customer_id <> ? AND (i.id IN"
        " (SELECT identity_id FROM identity_claims WHERE kind = 'email' AND value = ?)"
        " OR (i.channel = 'email' AND lower(i.address) = ? AND i.unverified = 0))"
        " ORDER BY i.id LIMIT 1",
        customer_id, email, email)
    if other is None:
        return customer_id, None
    refused = yield from one("SELECT 1 FROM links WHERE method = 'email' AND evidence = ?"
                             " AND undone_at IS NOT NULL LIMIT 1", email)
    if refused is not None:
        return customer_id, None
    prefer = yield from open_conversation(customer_id)
    merge = yield from merge_customers(int(other["customer_id"]), customer_id, LinkMethod.EMAIL,
                                       email, "bridge", now, prefer)
    return int(other["customer_id"]), merge


# -- handoff codes -------------------------------------------------------------------------
def add_code(code_hash: str, conversation_id: int, channel: str, created_by: str, now: float,
             expires_at: float) -> Tx[None]:
    conv = yield from one("SELECT customer_id FROM conversations WHERE id = ?", conversation_id)
    assert conv is not None
    yield from execute(
        "INSERT INTO handoff_codes (code_hash, customer_id, conversation_id, channel,"
        " created_by, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        code_hash, conv["customer_id"], conversation_id, channel, created_by, now, expires_at)


@dataclass(frozen=True)
class Redeemed:
    customer_id: int  # the customer the identity belongs to now
    event: Event | None  # for the thread the message lands in
    merge: Merge | None


def redeem_code(code_hash: str, identity_id: int, customer_id: int, channel: str, name: str,
                now: float) -> Tx[Redeemed]:
    """A customer arrived with a handoff code: join the customer it was issued for, once,
    before it expires.  A code never issued, used by someone else, or expired links nothing
    and the thread is told."""
    row = yield from one(
        "SELECT conversation_id, channel, created_by, expires_at, used_at, used_by"
        " FROM handoff_codes WHERE code_hash = ? {{for_update}}", code_hash)
    if row is None:
        return Redeemed(customer_id, HandoffRefused(name=name, reason="unknown"), None)
    conv = yield from one("SELECT customer_id FROM conversations WHERE id = ?",
                          row["conversation_id"])
    assert conv is not None
    owner = int(conv["customer_id"])
    if owner == customer_id:
        # Already this customer (the link opened on the channel it came on, an email reply
        # quoting the invitation): nothing to prove, and the code stays usable.
        return Redeemed(customer_id, None, None)
    if row["used_at"] is not None:
        return Redeemed(customer_id, HandoffRefused(name=name, reason="used"), None)
    if float(row["expires_at"]) < now:
        return Redeemed(customer_id, HandoffRefused(name=name, reason="expired"), None)
    yield from execute("UPDATE handoff_codes SET used_at = ?, used_by = ? WHERE code_hash = ?",
                       now, identity_id, code_hash)
    issued = str(row["channel"])  # the code was sent for it; the customer may use another
    label = channel_label(channel)
    evidence = issued if channel_label(issued) == label else f"{issued} code, used on {label}"
    merge = yield from merge_customers(owner, customer_id, LinkMethod.HANDOFF, evidence,
                                       "customer", now, prefer=int(row["conversation_id"]))
    return Redeemed(owner, HandoffLinked(name=name, channel=channel,
                                         issued_by=str(row["created_by"]),
                                         link_id=merge.link_id), merge)


def customer_of_conversation(conversation_id: int) -> Tx[CustomerId | None]:
    row = yield from one("SELECT customer_id FROM conversations WHERE id = ?", conversation_id)
    return None if row is None else CustomerId(int(row["customer_id"]))


def identity_on(customer_id: int, channel: str) -> Tx[tuple[IdentityId, str] | None]:
    """The customer's identity on `channel` they wrote from last (with its connector)."""
    row = yield from one(
        "SELECT id, connector FROM identities WHERE customer_id = ? AND channel = ?"
        " ORDER BY COALESCE(last_inbound_at, created_at) DESC, id DESC LIMIT 1",
        customer_id, channel)
    return None if row is None else (IdentityId(int(row["id"])), str(row["connector"]))


# -- an agent's link and unlink (`!link`, `!unlink`) ----------------------------------------
def agent_link(conversation_id: int, other: int, actor: str, evidence: str,
               now: float) -> Tx[LinkResult]:
    keep = yield from customer_of_conversation(conversation_id)
    if keep is None:
        return LinkResult(found=False)
    if keep == other:
        return LinkResult(found=True, already=True)
    theirs = [int(r["id"]) for r in (yield from rows(
        "SELECT id FROM identities WHERE customer_id = ? ORDER BY id", other))]
    if not theirs:
        done = yield from one("SELECT id FROM links WHERE customer_id = ? AND"
                              " other_customer_id = ? AND undone_at IS NULL", keep, other)
        if done is not None:  # a second click on the same button
            return LinkResult(found=True, already=True, link_id=int(done["id"]))
        return LinkResult(found=False)  # joined into someone else meanwhile
    who = yield from identities_of(theirs)
    merge = yield from merge_customers(keep, other, LinkMethod.AGENT, evidence, actor, now,
                                       prefer=conversation_id)
    here = merge.target if merge.target is not None else conversation_id
    note = yield from _notice(here, AgentLinked(actor=actor, who=who, link_id=merge.link_id),
                              now)
    return LinkResult(found=True, link_id=merge.link_id, outbox=(*merge.outbox, note))


def agent_unlink(conversation_id: int, link_id: int | None, actor: str, now: float,
                 request: str | None = None) -> Tx[LinkResult]:
    """`request` names the command (Slack redelivers events): a repeat undoes nothing more."""
    if request is not None and (yield from seen_slack_event(request, now)):
        return LinkResult(found=True, already=True)
    customer = yield from customer_of_conversation(conversation_id)
    if customer is None:
        return LinkResult(found=False)
    return (yield from undo_link(customer, link_id, actor, now, conversation_id))
