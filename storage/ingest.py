"""Storing a customer's message: the identity, the customer it belongs to, the conversation it
joins, the message, and the Slack outbox rows; one transaction (see `storage/transactions.py`).

The customer is the person, not the address: a message joins the open conversation of the
customer its identity belongs to, whatever the channel.  Identities join a customer only on
evidence (`storage/links.py`): a handoff code issued in that customer's thread, or a phone
number both proved.  The router has already normalized both (`bridge/continuity.py`).

`ingest_inbound` runs the steps in order, each a transaction step of its own: a duplicate
stops it, then the identity, the evidence it carries, the conversation, the message, and the
outbox rows.  What the agents must be told is kept as typed events (`vocab/events.py`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

from storage.links import Merge, claim_email, claim_phone, redeem_code
from storage.outbox_rows import add_event, add_outbox
from storage.ownership import customer_wrote, record
from storage.query import Row, Tx, claim, execute, insert, one
from storage.transactions import set_opted_out
from vocab.continuity import code_hash
from vocab.events import (
    ChannelSwitched,
    EmailLinked,
    Event,
    OptOutChanged,
    PhoneLinked,
    ReopenedByCustomer,
    ReplyByEmail,
    ReturningCustomer,
    Who,
)
from vocab.models import (
    ConversationId,
    ConversationStatus,
    InboundMessage,
    IngestResult,
    MessageId,
    OutboxItem,
    OutboxKind,
)


def ingest_inbound_many(
    items: Sequence[InboundMessage], slack_channel: str, now: float, reopen_within: float,
) -> Tx[list[IngestResult]]:
    results: list[IngestResult] = []
    for item in items:
        results.append((yield from ingest_inbound(item, slack_channel, now, reopen_within)))
    return results


@dataclass
class Evidence:
    """What the message proved about who the customer is, and what the thread must hear."""

    customer_id: int
    events: list[Event] = field(default_factory=list)
    merges: list[Merge] = field(default_factory=list)
    told: bool = False  # an event already says what this message did to the customer


@dataclass(frozen=True)
class Joined:
    """The conversation the message joins, and how."""

    conversation_id: int
    created: bool = False
    before: str = ConversationStatus.OPEN.value  # its status before the message
    earlier: bool = False  # a new conversation of a customer seen before

    @property
    def reopened(self) -> bool:
        return self.before == ConversationStatus.CLOSED


def ingest_inbound(
    item: InboundMessage, slack_channel: str, now: float, reopen_within: float = 0.0,
) -> Tx[IngestResult]:
    # Grouped into one commit with others (PostgreSQL), messages of one address or customer
    # run one after the other, as the row locks below make them do across instances.
    yield from claim(f"identity:{item.connector}:{item.address}")
    dup = yield from one(
        "SELECT id, conversation_id FROM messages WHERE connector = ? AND platform_message_id = ?",
        item.connector, item.platform_message_id,
    )
    if dup is not None:
        return IngestResult(message_id=MessageId(dup["id"]),
                            conversation_id=ConversationId(dup["conversation_id"]),
                            duplicate=True)
    identity_id, customer_id = yield from _identity(item, now)
    if item.handoff_code or item.verified_phone or item.verified_email:
        yield from claim("links")  # may join other customers: one such message at a time
    yield from claim(f"customer:{customer_id}")
    evidence = yield from _evidence(item, identity_id, customer_id, now)
    joined = yield from _conversation(item, identity_id, evidence, slack_channel, now,
                                      reopen_within)
    if item.reply_email and not _is_echo(item):
        yield from reply_by_email(item.reply_email, identity_id, evidence, joined, now)
    message_id = yield from _message(item, joined.conversation_id, identity_id, now)
    out = yield from _outbox(item, joined, evidence, message_id, now)
    return IngestResult(message_id=MessageId(message_id),
                        conversation_id=ConversationId(joined.conversation_id),
                        duplicate=False, outbox=tuple(out))


def _is_echo(item: InboundMessage) -> bool:
    return item.echo_author is not None  # the business's own reply, made outside the bridge


def _identity(item: InboundMessage, now: float) -> Tx[tuple[int, int]]:
    """The identity the message came from (created on first contact), and its customer."""
    wrote_at = None if item.edit_of is not None or _is_echo(item) else (item.platform_time or now)
    # FOR UPDATE (PostgreSQL) locks the identity and its customer: concurrent messages of one
    # customer then pick or open the conversation one after the other.
    ident = yield from one(
        "SELECT i.id, i.customer_id, i.display_name, i.username FROM identities i"
        " JOIN customers c ON c.id = i.customer_id WHERE i.connector = ? AND i.address = ?"
        " {{for_update}}",
        item.connector, item.address,
    )
    if ident is None:
        customer_id = yield from insert(
            "INSERT INTO customers (display_name, created_at) VALUES (?, ?)",
            item.sender_name, now)
        identity_id = yield from insert(
            "INSERT INTO identities (customer_id, connector, address, display_name, username,"
            " created_at, last_inbound_at, channel) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            customer_id, item.connector, item.address, item.sender_name, item.username, now,
            wrote_at, item.channel or item.connector,
        )
        return identity_id, customer_id
    identity_id = int(ident["id"])
    # Windows (WhatsApp, Messenger) count from the customer's latest own message; an
    # edit is not one, and a late redelivery never moves the time back.
    renamed = ((ident["display_name"], ident["username"]) != (item.sender_name, item.username)
               and item.sender_name)
    yield from execute(
        "UPDATE identities SET last_inbound_at = CASE WHEN CAST(? AS {{real}}) IS NOT NULL"
        " AND (last_inbound_at IS NULL OR last_inbound_at < ?) THEN ?"
        " ELSE last_inbound_at END"
        + (", display_name = ?, username = ?" if renamed else "") + " WHERE id = ?",
        *[wrote_at] * 3, *((item.sender_name, item.username) if renamed else ()),
        identity_id)
    return identity_id, int(ident["customer_id"])


def _evidence(item: InboundMessage, identity_id: int, customer_id: int,
              now: float) -> Tx[Evidence]:
    """An opt-out or opt-in, a handoff code, a verified phone number: what each changes."""
    found = Evidence(customer_id)
    channel = item.channel or item.connector
    if item.opt_out is not None and (yield from set_opted_out(identity_id, item.opt_out, now)):
        found.events.append(OptOutChanged(opted_out=item.opt_out))
    if _is_echo(item):
        return found
    if item.handoff_code:
        redeemed = yield from redeem_code(code_hash(item.handoff_code), identity_id,
                                          found.customer_id, channel, item.sender_name, now)
        found.customer_id = redeemed.customer_id
        if redeemed.event is not None:
            found.events.append(redeemed.event)
            found.told = True
        if redeemed.merge is not None:
            found.merges.append(redeemed.merge)
    if item.verified_phone:
        found.customer_id, merge = yield from claim_phone(identity_id, found.customer_id,
                                                          item.verified_phone, now)
        if merge is not None:
            found.merges.append(merge)
            found.events.append(PhoneLinked(phone=item.verified_phone, channel=channel,
                                            link_id=merge.link_id))
    if item.verified_email:
        found.customer_id, merge = yield from claim_email(identity_id, found.customer_id,
                                                          item.verified_email, now)
        if merge is not None:
            found.merges.append(merge)
            found.events.append(EmailLinked(email=item.verified_email, channel=channel,
                                            link_id=merge.link_id))
    return found


def _latest_conversation(customer_id: int) -> Tx[Row | None]:
    """The customer's open conversation, else their latest, with the identity it answers on."""
    return (yield from one(
        "SELECT c.id, c.status, c.closed_at, c.identity_id, i.channel, i.address,"
        " i.display_name, i.username FROM"
        " conversations c JOIN identities i ON i.id = c.identity_id WHERE c.customer_id = ?"
        " AND c.merged_into IS NULL ORDER BY CASE WHEN c.status <> 'closed' THEN 0 ELSE 1 END,"
        " c.id DESC LIMIT 1",
        customer_id,
    ))


def _conversation(item: InboundMessage, identity_id: int, evidence: Evidence,
                  slack_channel: str, now: float, reopen_within: float) -> Tx[Joined]:
    """The conversation the message joins: the open one (reopened while recent), else a new
    one that links back to the latest."""
    conv = yield from _latest_conversation(evidence.customer_id)
    if conv is not None and _is_echo(item):
        return Joined(int(conv["id"]))  # shown where it belongs; opens and reopens nothing
    if conv is not None and (conv["status"] != ConversationStatus.CLOSED or (
            item.reopen and conv["closed_at"] is not None
            and now - float(conv["closed_at"]) <= reopen_within)):
        conversation_id = int(conv["id"])
        if int(conv["identity_id"]) != identity_id and not evidence.merges and not evidence.told:
            # A known customer on another of their channels: say where replies go now.
            evidence.events.append(ChannelSwitched(
                now=Who(channel=item.channel or item.connector, address=item.address,
                        name=item.sender_name, username=item.username),
                before=Who(channel=str(conv["channel"]), address=str(conv["address"]),
                           name=str(conv["display_name"]), username=conv["username"])))
        # Replies follow the customer to the channel they wrote on last; a closed, pending or
        # snoozed conversation is open again.
        before = str(conv["status"])
        moved = before != ConversationStatus.OPEN
        yield from execute(
            "UPDATE conversations SET identity_id = ?, connector = ?, address = ?,"
            " last_inbound_at = ?, updated_at = ?, status = 'open', closed_at = NULL,"
            " closed_by = NULL"
            + (", status_at = ?, status_by = 'customer', snooze_until = NULL" if moved else "")
            + " WHERE id = ?",
            identity_id, item.connector, item.address, now, now, *((now,) if moved else ()),
            conversation_id,
        )
        return Joined(conversation_id, before=before)
    # No conversation yet, or one closed too long ago: a new thread that links back.
    conversation_id = yield from insert(
        "INSERT INTO conversations (customer_id, identity_id, connector, address, status,"
        " slack_channel, created_at, updated_at, last_inbound_at, previous_id, status_at,"
        " invitation) VALUES (?, ?, ?, ?, 'open', ?, ?, ?, ?, ?, ?, ?)",
        evidence.customer_id, identity_id, item.connector, item.address, slack_channel, now,
        now, None if _is_echo(item) else now, None if conv is None else int(conv["id"]), now,
        item.invitation or None,
    )
    return Joined(conversation_id, created=True,
                  earlier=conv is not None or bool(evidence.merges))


def reply_by_email(email: str, identity_id: int, evidence: Evidence, joined: Joined,
                   now: float) -> Tx[None]:
    """The customer typed an address for replies (the web chat's offline prompt): replies go
    there through the email connector, and are still shown where they wrote.  The address is
    unverified: it becomes an email identity of this customer flagged `unverified` (which
    `claim_email` never counts as evidence), and an address that is already another
    customer's links nothing and routes nothing."""
    address = email.strip().lower()
    known = yield from one("SELECT id, customer_id, shown_on FROM identities"
                           " WHERE connector = 'email' AND address = ?", address)
    if known is not None and int(known["customer_id"]) != evidence.customer_id:
        evidence.events.append(ReplyByEmail(email=address, taken=True))
        return
    if known is None:
        target = yield from insert(
            "INSERT INTO identities (customer_id, connector, address, display_name, created_at,"
            " channel, unverified, shown_on) VALUES (?, 'email', ?, '', ?, 'email', 1, ?)",
            evidence.customer_id, address, now, identity_id)
    else:
        target = int(known["id"])
        yield from execute("UPDATE identities SET shown_on = ? WHERE id = ?", identity_id, target)
    yield from execute("UPDATE conversations SET identity_id = ?, connector = 'email',"
                       " address = ? WHERE id = ?", target, address, joined.conversation_id)
    # The page sends the address with each message written offline: the thread hears it once.
    said = [e for e in evidence.events if isinstance(e, ChannelSwitched)
            and e.before.channel == "email" and e.before.address == address]
    if said:  # replies went there already: the switch back and forth is no news
        evidence.events[:] = [e for e in evidence.events if e not in said]
    elif known is None or known["shown_on"] is None or int(known["shown_on"]) != identity_id:
        evidence.events.append(ReplyByEmail(email=address))


def _message(item: InboundMessage, conversation_id: int, identity_id: int,
             now: float) -> Tx[int]:
    attachments = json.dumps([a.model_dump(exclude_none=True) for a in item.attachments])
    return (yield from insert(
        "INSERT INTO messages (conversation_id, direction, connector, platform_message_id,"
        " platform_ref, text, attachments, author_name, state, created_at, platform_time,"
        " markup, edit_of, identity_id)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'received', ?, ?, ?, ?, ?)",
        conversation_id, "out" if _is_echo(item) else "in", item.connector,
        item.platform_message_id, item.platform_ref, item.text, attachments,
        item.echo_author or item.sender_name, now, item.platform_time, item.markup,
        item.edit_of, identity_id,
    ))


def _outbox(item: InboundMessage, joined: Joined, evidence: Evidence, message_id: int,
            now: float) -> Tx[list[OutboxItem]]:
    """The Slack side of the message, in the order the thread shows it."""
    conversation_id = joined.conversation_id
    out: list[OutboxItem] = [row for merge in evidence.merges for row in merge.outbox]
    if joined.reopened:
        yield from record(conversation_id, "status", joined.before, "open", "customer", now)
        out.append((yield from add_event(conversation_id, ReopenedByCustomer(), now)))
        out.append((yield from add_outbox(OutboxKind.SLACK_STATUS, conversation_id, None, "",
                                          now)))
    elif joined.before != ConversationStatus.OPEN:  # pending or snoozed: the customer answered
        out.extend((yield from customer_wrote(conversation_id, joined.before, now)))
    out.append((yield from add_outbox(OutboxKind.SLACK_POST, conversation_id, message_id, "",
                                      now)))
    if joined.created and joined.earlier:
        # A returning customer: the thread starts with who they are and what came before.
        out.append((yield from add_event(
            conversation_id, ReturningCustomer(customer_id=evidence.customer_id), now)))
    for event in evidence.events:
        out.append((yield from add_event(conversation_id, event, now)))
    for index, attachment in enumerate(item.attachments):
        if attachment.platform_file_id or attachment.url:
            out.append((yield from add_outbox(OutboxKind.SLACK_FILE, conversation_id,
                                              message_id, str(index), now)))
    return out
