"""Storing a customer's message: the identity, the customer it belongs to, the conversation it
joins, the message, and the Slack outbox rows; one transaction (see `storage/transactions.py`).

The customer is the person, not the address: a message joins the open conversation of the
customer its identity belongs to, whatever the channel.  Identities join a customer only on
evidence (`storage/links.py`): a handoff code issued in that customer's thread, or a phone
number both proved.  The router has already normalized both (`bridge/continuity.py`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from storage.links import Merge, claim_phone, redeem_code
from storage.outbox_rows import add_outbox
from storage.query import Tx, execute, insert, one
from storage.transactions import OPT_IN_NOTICE, OPT_OUT_NOTICE, set_opted_out
from vocab.continuity import channel_label, code_hash, describe
from vocab.models import (
    ConversationId,
    ConversationStatus,
    InboundMessage,
    IngestResult,
    MessageId,
    OutboxItem,
    OutboxKind,
)
from vocab.mrkdwn import mrkdwn_escape


def ingest_inbound_many(
    items: Sequence[InboundMessage], slack_channel: str, now: float, reopen_within: float,
) -> Tx[list[IngestResult]]:
    results: list[IngestResult] = []
    for item in items:
        results.append((yield from ingest_inbound(item, slack_channel, now, reopen_within)))
    return results


def ingest_inbound(
    item: InboundMessage, slack_channel: str, now: float, reopen_within: float = 0.0,
) -> Tx[IngestResult]:
    dup = yield from one(
        "SELECT id, conversation_id FROM messages WHERE connector = ? AND platform_message_id = ?",
        item.connector, item.platform_message_id,
    )
    if dup is not None:
        return IngestResult(message_id=MessageId(dup[0]),
                            conversation_id=ConversationId(dup[1]), duplicate=True)

    echo = item.echo_author is not None  # the business's own reply, made outside the bridge
    wrote_at = None if item.edit_of is not None or echo else (item.platform_time or now)
    channel = item.channel or item.connector
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
            wrote_at, channel,
        )
    else:
        identity_id, customer_id = int(ident[0]), int(ident[1])
        # Windows (WhatsApp, Messenger) count from the customer's latest own message; an
        # edit is not one, and a late redelivery never moves the time back.
        renamed = (ident[2], ident[3]) != (item.sender_name, item.username) and item.sender_name
        yield from execute(
            "UPDATE identities SET last_inbound_at = CASE WHEN CAST(? AS {{real}}) IS NOT NULL"
            " AND (last_inbound_at IS NULL OR last_inbound_at < ?) THEN ?"
            " ELSE last_inbound_at END"
            + (", display_name = ?, username = ?" if renamed else "") + " WHERE id = ?",
            *[wrote_at] * 3, *((item.sender_name, item.username) if renamed else ()),
            identity_id)
    notes: list[str] = []
    merges: list[Merge] = []
    told = False  # a note already says what this message did to the customer
    if item.opt_out is not None and (yield from set_opted_out(identity_id, item.opt_out, now)):
        notes.append(OPT_OUT_NOTICE if item.opt_out else OPT_IN_NOTICE)
    if not echo and item.handoff_code:
        redeemed = yield from redeem_code(code_hash(item.handoff_code), identity_id,
                                          customer_id, channel_label(channel),
                                          mrkdwn_escape(item.sender_name) or "The customer",
                                          now)
        customer_id = redeemed.customer_id
        if redeemed.note is not None:
            notes.append(redeemed.note)
            told = True
        if redeemed.merge is not None:
            merges.append(redeemed.merge)
    if not echo and item.verified_phone:
        customer_id, merge = yield from claim_phone(identity_id, customer_id, item.verified_phone,
                                                    now)
        if merge is not None:
            merges.append(merge)
            notes.append(f":link: Linked automatically: the same phone number "
                         f"{item.verified_phone} wrote on {channel_label(channel)} (link "
                         f"{merge.link_id}; an agent can undo it with the unlink command).")

    # The customer's open conversation, else their latest (reopened while recent).
    conv = yield from one(
        "SELECT c.id, c.status, c.closed_at, c.identity_id, i.channel, i.address,"
        " i.display_name, i.username FROM"
        " conversations c JOIN identities i ON i.id = c.identity_id WHERE c.customer_id = ?"
        " AND c.merged_into IS NULL ORDER BY CASE WHEN c.status = 'open' THEN 0 ELSE 1 END,"
        " c.id DESC LIMIT 1",
        customer_id,
    )
    reopened = created = False
    if conv is not None and echo:
        conversation_id = int(conv[0])  # shown where it belongs; opens and reopens nothing
    elif conv is not None and (conv[1] == ConversationStatus.OPEN or (
            item.reopen and conv[2] is not None and now - float(conv[2]) <= reopen_within)):
        conversation_id = int(conv[0])
        reopened = conv[1] != ConversationStatus.OPEN
        if int(conv[3]) != identity_id and not merges and not told:
            # A known customer on another of their channels: say where replies go now.
            notes.append(f":twisted_rightwards_arrows: Now writing on "
                         f"{describe(channel, item.address, item.sender_name, item.username)};"
                         " replies go there (before: "
                         f"{describe(str(conv[4]), str(conv[5]), str(conv[6]), conv[7])}).")
        # Replies follow the customer to the channel they wrote on last.
        yield from execute(
            "UPDATE conversations SET identity_id = ?, connector = ?, address = ?,"
            " last_inbound_at = ?, updated_at = ?, status = 'open', closed_at = NULL,"
            " closed_by = NULL WHERE id = ?",
            identity_id, item.connector, item.address, now, now, conversation_id,
        )
    else:
        # No conversation yet, or one closed too long ago: a new thread that links back.
        created = True
        conversation_id = yield from insert(
            "INSERT INTO conversations (customer_id, identity_id, connector, address, status,"
            " slack_channel, created_at, updated_at, last_inbound_at, previous_id)"
            " VALUES (?, ?, ?, ?, 'open', ?, ?, ?, ?, ?)",
            customer_id, identity_id, item.connector, item.address, slack_channel, now, now,
            None if echo else now, None if conv is None else int(conv[0]),
        )
    attachments = json.dumps([a.model_dump(exclude_none=True) for a in item.attachments])
    message_id = yield from insert(
        "INSERT INTO messages (conversation_id, direction, connector, platform_message_id,"
        " platform_ref, text, attachments, author_name, state, created_at, platform_time,"
        " markup, edit_of, identity_id)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'received', ?, ?, ?, ?, ?)",
        conversation_id, "out" if echo else "in", item.connector, item.platform_message_id,
        item.platform_ref, item.text, attachments, item.echo_author or item.sender_name, now,
        item.platform_time, item.markup, item.edit_of, identity_id,
    )
    out: list[OutboxItem] = [row for merge in merges for row in merge.outbox]
    if reopened:
        out.append((yield from add_outbox(
            OutboxKind.SLACK_NOTICE, conversation_id, None,
            ":arrows_counterclockwise: Reopened: the customer wrote again.", now)))
        out.append((yield from add_outbox(OutboxKind.SLACK_STATUS, conversation_id, None, "",
                                          now)))
    out.append((yield from add_outbox(OutboxKind.SLACK_POST, conversation_id, message_id, "",
                                      now)))
    if created and (conv is not None or merges):
        # A returning customer: the thread starts with who they are and what came before.
        out.append((yield from add_outbox(OutboxKind.SLACK_NOTICE, conversation_id, None,
                                          json.dumps({"text": "", "context": customer_id}),
                                          now)))
    for note in notes:
        out.append((yield from add_outbox(OutboxKind.SLACK_NOTICE, conversation_id, None, note,
                                          now)))
    for index, attachment in enumerate(item.attachments):
        if attachment.platform_file_id or attachment.url:
            out.append((yield from add_outbox(OutboxKind.SLACK_FILE, conversation_id,
                                              message_id, str(index), now)))
    return IngestResult(message_id=MessageId(message_id),
                        conversation_id=ConversationId(conversation_id), duplicate=False,
                        outbox=tuple(out))
