"""Customers' data in the store (issue 28): erasure, retention and the audit trail.

`erase_customer` removes or anonymizes everything `storage/privacy_tables.py` lists as
personal, in one transaction, keeping the ids, times and counts the KPIs read; it queues one
`slack_erase` outbox row per Slack thread of the customer, which a running bridge delivers
(deletes its own posts, rewrites the parent).  `retention` empties the text and files of
conversations closed long ago and drops old media, once per interval across instances.
Every action on people's data is one `audit_log` row: who, when, which customer id; never
what the data was.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from storage.base import AuditEntry, Erasure, Retention, SlackThread
from storage.outbox_rows import add_outbox
from storage.ownership import record
from storage.query import Row, Tx, execute, insert, one, rows
from vocab.models import OutboxItem, OutboxKind

ERASED_ADDRESS = "erased"
RETENTION_JOB = "retention"


def _marks(values: Sequence[object]) -> str:
    return ", ".join("?" for _ in values)


def audit(actor: str, action: str, customer_id: int | None, now: float,
          other: int | None = None, detail: str = "") -> Tx[int]:
    return (yield from insert(
        "INSERT INTO audit_log (at, actor, action, customer_id, other_customer_id, detail)"
        " VALUES (?, ?, ?, ?, ?, ?)", now, actor, action, customer_id, other, detail))


def audit_entries(since: float, limit: int) -> Tx[list[AuditEntry]]:
    found = yield from rows(
        "SELECT id, at, actor, action, customer_id, other_customer_id, detail FROM audit_log"
        " WHERE at >= ? ORDER BY at, id LIMIT ?", since, limit)
    return [AuditEntry(id=int(r["id"]), at=float(r["at"]), actor=str(r["actor"]),
                       action=str(r["action"]),
                       customer_id=None if r["customer_id"] is None else int(r["customer_id"]),
                       other_customer_id=None if r["other_customer_id"] is None
                       else int(r["other_customer_id"]), detail=str(r["detail"]))
            for r in found]


def _ids(found: Sequence[Row]) -> list[int]:
    return [int(r["id"]) for r in found]


def erase_customer(customer_id: int, actor: str, now: float) -> Tx[Erasure]:
    customer = yield from one("SELECT id, erased_at FROM customers WHERE id = ? {{for_update}}",
                              customer_id)
    if customer is None:
        return Erasure(found=False)
    if customer["erased_at"] is not None:
        return Erasure(found=True, already=True)
    idents = yield from rows("SELECT id, connector, channel, address, username FROM identities"
                             " WHERE customer_id = ? ORDER BY id", customer_id)
    identity_ids = _ids(idents)
    convs = yield from rows(
        "SELECT id, status, slack_channel, slack_thread_ts FROM conversations"
        " WHERE customer_id = ? ORDER BY id", customer_id)
    conv_ids = _ids(convs)
    addresses = sorted({str(r["address"]) for r in idents}
                       | {str(r["address"]).lower() for r in idents})
    phones: list[str] = []
    if identity_ids:
        claims = yield from rows(f"SELECT DISTINCT value FROM identity_claims WHERE identity_id"
                                 f" IN ({_marks(identity_ids)})", *identity_ids)
        phones = [str(r["value"]) for r in claims]
    # Messages: in their conversations, and any sent from or to their identities elsewhere.
    where, params = "conversation_id = -1", []
    if conv_ids:
        where, params = f"conversation_id IN ({_marks(conv_ids)})", list(conv_ids)
    if identity_ids:
        where += f" OR identity_id IN ({_marks(identity_ids)})"
        params += identity_ids
    agents = yield from rows(
        f"SELECT slack_channel, slack_ts FROM messages WHERE ({where}) AND direction = 'out'"
        " AND author_slack_user IS NOT NULL AND slack_ts IS NOT NULL ORDER BY id", *params)
    yield from _drop_originals(f"SELECT connector, attachments FROM messages WHERE ({where})"
                               " AND attachments <> '[]'", *params)
    erased = yield from execute(
        f"UPDATE messages SET text = '', markup = NULL, attachments = '[]', error = NULL,"
        f" author_name = CASE WHEN direction = 'in' THEN '' ELSE author_name END"
        f" WHERE {where}", *params)
    # Their messages' platform ids can name them (a web chat's `<site>:u-<user id>/<n>`, a
    # WhatsApp wamid encodes the number): a redelivery after the erasure is a new message.
    yield from execute(f"UPDATE messages SET platform_message_id = 'erased:' || CAST(id AS"
                       f" TEXT) WHERE ({where}) AND direction = 'in' AND platform_message_id"
                       f" IS NOT NULL", *params)
    out: list[OutboxItem] = []
    threads: list[SlackThread] = []
    if conv_ids:
        marks = _marks(conv_ids)
        for conv in convs:
            if str(conv["status"]) != "closed":
                yield from execute(
                    "UPDATE conversations SET status = 'closed', closed_at = ?, closed_by = ?,"
                    " status_at = ?, status_by = ?, snooze_until = NULL, updated_at = ?"
                    " WHERE id = ?", now, "bridge", now, "bridge", now, int(conv["id"]))
                yield from record(int(conv["id"]), "status", str(conv["status"]), "closed",
                                  "bridge", now)
        yield from execute(f"UPDATE conversations SET address = ? WHERE id IN ({marks})",
                           ERASED_ADDRESS, *conv_ids)
        yield from execute(f"DELETE FROM media WHERE conversation_id IN ({marks})", *conv_ids)
        yield from execute(f"UPDATE surveys SET comment = NULL WHERE customer_id = ? OR"
                           f" conversation_id IN ({marks})", customer_id, *conv_ids)
        yield from execute(f"DELETE FROM handoff_codes WHERE customer_id = ? OR conversation_id"
                           f" IN ({marks})", customer_id, *conv_ids)
        # What was not delivered yet is not delivered (it would post their words again).
        yield from execute(
            f"UPDATE outbox SET status = 'blocked', last_error = 'erased', updated_at = ?"
            f" WHERE conversation_id IN ({marks}) AND status IN ('pending', 'failed')",
            now, *conv_ids)
        yield from execute(f"UPDATE outbox SET payload = '' WHERE conversation_id IN ({marks})",
                           *conv_ids)
        moved = yield from rows(f"SELECT conversation_id, slack_channel, slack_thread_ts FROM"
                                f" moved_threads WHERE conversation_id IN ({marks})", *conv_ids)
        places = [(int(c["id"]), c["slack_channel"], c["slack_thread_ts"]) for c in convs]
        places += [(int(m["conversation_id"]), m["slack_channel"], m["slack_thread_ts"])
                   for m in moved]
        for conv_id, channel, thread_ts in places:
            if channel is None or thread_ts is None:
                continue
            thread = SlackThread(conversation_id=conv_id, channel=str(channel),
                                 thread_ts=str(thread_ts))
            threads.append(thread)
            out.append((yield from add_outbox(
                OutboxKind.SLACK_ERASE, conv_id, None,
                json.dumps({**thread.model_dump(), "erased_at": now}), now)))
    for address in addresses:  # the web chat's mailbox of this visitor, and its files
        yield from _drop_webchat(address)
    for address in addresses:  # notices elsewhere that named them (a link, an unlink)
        if len(address) < 6:
            continue  # too short to tell from other text
        yield from execute("UPDATE outbox SET payload = '' WHERE status IN ('done', 'blocked')"
                           " AND payload LIKE ? ESCAPE '\\'",
                           f"%{_escape(json.dumps(address)[1:-1])}%")
    if identity_ids:
        marks = _marks(identity_ids)
        yield from execute(f"DELETE FROM identity_claims WHERE identity_id IN ({marks})",
                           *identity_ids)
        yield from execute(f"DELETE FROM handoff_codes WHERE used_by IN ({marks})",
                           *identity_ids)
        yield from execute(
            f"UPDATE identities SET address = 'erased:' || CAST(id AS TEXT), display_name = '',"
            f" username = NULL WHERE id IN ({marks})", *identity_ids)
    # Connectors' state about them: email's threading maps (Message-ID and reply-token keys
    # hold the address as their value, `thread:<address>` is keyed by it), Messenger's cached
    # profile names and receipt marks (`name:<page>:<psid>`...): a value that is the address,
    # or a key that ends with `:<address>`.
    # A bare number (a Telegram chat id) is not matched as a value: cursors are numbers too.
    for ident in idents:
        address = str(ident["address"])
        forms = sorted({address, address.lower()})
        values = [] if address.isdigit() else forms
        yield from execute(
            f"DELETE FROM connector_state WHERE connector = ? AND (value IN"
            f" ({_marks(values) or 'NULL'}) OR key LIKE ? ESCAPE '\\' OR key LIKE ?"
            f" ESCAPE '\\')", str(ident["connector"]), *values, f"%:{_escape(forms[0])}",
            f"%:{_escape(forms[-1])}")
    evidence = [*phones, *addresses]
    yield from execute(
        f"UPDATE links SET evidence = '' WHERE customer_id = ? OR other_customer_id = ?"
        f" OR evidence IN ({_marks(evidence) or 'NULL'})", customer_id, customer_id, *evidence)
    # Customers joined into this one by links still in force are empty shells of the same
    # person: their names and fields go too.
    shells = yield from rows("SELECT other_customer_id FROM links WHERE customer_id = ? AND"
                             " undone_at IS NULL", customer_id)
    people = [customer_id, *(int(r["other_customer_id"]) for r in shells)]
    marks = _marks(people)
    yield from execute(f"DELETE FROM customer_fields WHERE customer_id IN ({marks})", *people)
    if conv_ids:  # canned replies as filled for them (issue 22)
        yield from execute(f"DELETE FROM canned_previews WHERE conversation_id IN"
                           f" ({_marks(conv_ids)})", *conv_ids)
    yield from execute(f"UPDATE surveys SET comment = NULL WHERE customer_id IN ({marks})",
                       *people)
    yield from execute(f"UPDATE customers SET display_name = '', tags = '', erased_at = ?"
                       f" WHERE id IN ({marks})", now, *people)
    yield from audit(actor, "erase", customer_id, now, detail=(
        f"{len(conv_ids)} conversations, {erased} messages, {len(identity_ids)} identities"))
    return Erasure(found=True, conversations=len(conv_ids), messages=erased,
                   identities=len(identity_ids), threads=tuple(threads),
                   agent_replies=tuple((str(r["slack_channel"]), str(r["slack_ts"]))
                                       for r in agents), outbox=tuple(out))


def _drop_originals(select: str, *params: object) -> Tx[int]:
    """Delete the raw mails (connector state `raw:<sha256>`) and the kept files (`file:<id>`)
    the attachments of the messages `select` reads (connector, attachments) were served from."""
    found = yield from rows(select, *params)
    keys: set[tuple[str, str]] = set()
    for row in found:
        try:
            items = json.loads(str(row["attachments"]))
        except ValueError:
            continue
        for item in items if isinstance(items, list) else []:
            ref = str(item.get("platform_file_id") or "") if isinstance(item, dict) else ""
            if ref.startswith("raw:"):
                keys.add((str(row["connector"]), ref.split("#", 1)[0]))
            elif ref:  # a file the connector keeps itself (the web chat's `file:<key>`)
                keys.add((str(row["connector"]), f"file:{ref}"))
    dropped = 0
    for connector, key in sorted(keys):
        dropped += yield from execute("DELETE FROM connector_state WHERE connector = ? AND"
                                      " key = ?", connector, key)
    return dropped


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def retention(now: float, messages_before: float | None, media_before: float | None,
              actor: str, interval: float) -> Tx[Retention]:
    """Empty the messages of conversations closed before `messages_before` and delete media
    stored before `media_before` (None: keep).  Runs only when the last run is at least
    `interval` seconds old (0: always): of instances starting together, one runs it."""
    if interval > 0:
        claimed = yield from execute(
            "INSERT INTO privacy_jobs (job, last_run_at) VALUES (?, ?) ON CONFLICT (job) DO"
            " UPDATE SET last_run_at = excluded.last_run_at WHERE privacy_jobs.last_run_at <= ?",
            RETENTION_JOB, now, now - interval)
        if claimed == 0:
            return Retention(ran=False)
    else:
        yield from execute(
            "INSERT INTO privacy_jobs (job, last_run_at) VALUES (?, ?) ON CONFLICT (job) DO"
            " UPDATE SET last_run_at = excluded.last_run_at", RETENTION_JOB, now)
    messages = payloads = media = 0
    if messages_before is not None:
        old = ("SELECT id FROM conversations WHERE status = 'closed' AND closed_at IS NOT NULL"
               " AND closed_at < ?")
        media += yield from _drop_originals(
            f"SELECT connector, attachments FROM messages WHERE conversation_id IN ({old})"
            " AND attachments <> '[]'", messages_before)
        messages = yield from execute(
            f"UPDATE messages SET text = '', markup = NULL, attachments = '[]' WHERE"
            f" conversation_id IN ({old}) AND (text <> '' OR attachments <> '[]' OR markup IS"
            f" NOT NULL)", messages_before)
        payloads = yield from execute(
            f"UPDATE outbox SET payload = '' WHERE conversation_id IN ({old}) AND status <>"
            f" 'pending' AND payload <> ''", messages_before)
        yield from execute(f"DELETE FROM canned_previews WHERE conversation_id IN ({old})",
                           messages_before)
        # The web chat's transcript of a visitor none of whose conversations is newer.
        visitors = yield from rows(
            f"SELECT DISTINCT address FROM conversations WHERE connector = 'webchat' AND id IN"
            f" ({old}) AND address NOT IN (SELECT address FROM conversations WHERE connector ="
            f" 'webchat' AND (status <> 'closed' OR closed_at IS NULL OR closed_at >= ?))",
            messages_before, messages_before)
        for visitor in visitors:
            yield from _drop_webchat(str(visitor["address"]))
    if media_before is not None:
        media += yield from execute("DELETE FROM media WHERE created_at < ?", media_before)
    yield from audit(actor, "retention", None, now,
                     detail=f"{messages} messages emptied, {media} files deleted")
    return Retention(ran=True, messages=messages, media=media, outbox=payloads)


def _drop_webchat(address: str) -> Tx[None]:
    """The web chat keeps what a returning page is shown under `log:<address>` and each file
    under `file:<key>` (named by the log's `/webchat/file/<key>` links)."""
    found = yield from one("SELECT value FROM connector_state WHERE connector = 'webchat' AND"
                           " key = ?", f"log:{address}")
    if found is None:
        return
    try:
        items = json.loads(str(found["value"]))
    except ValueError:
        items = []
    for item in items if isinstance(items, list) else []:
        for file in (item.get("files") or []) if isinstance(item, dict) else []:
            key = str(file.get("url", "")).rsplit("/webchat/file/", 1)[-1] \
                if isinstance(file, dict) else ""
            if key:
                yield from execute("DELETE FROM connector_state WHERE connector = 'webchat' AND"
                                   " key = ?", f"file:{key}")
    yield from execute("DELETE FROM connector_state WHERE connector = 'webchat' AND key = ?",
                       f"log:{address}")
