"""The IMAP side against a real Dovecot: cursor across restarts, dropped connections, IDLE or
polling, UIDVALIDITY changes, and what happens to processed mail."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from connectors.email import imap
from storage.base import StoreError
from tests.conftest import Harness, HarnessFactory
from tests.dovecot import Dovecot
from tests.mailservers import (
    EMAIL_ENV,
    SmtpReceiver,
    customer_mail,
    email_config,
)
from tests.waiting import poll, until
from vocab.backoff import backoff as real_backoff
from vocab.models import Attachment, InboundMessage, IngestResult

# SQLite only: the IMAP protocol (IDLE, reconnects, flags, backoff); the re-read without
# duplicates runs on both.
pytestmark = pytest.mark.backends("sqlite")

ANN = "Ann Kim <ann@example.org>"
SUPPORT = "Support – Kunden"  # a space and a non-ASCII name: modified UTF-7, quoted
DONE = "Erledigt & fertig"


def mail(n: int) -> bytes:
    return customer_mail(ANN, f"Question {n}", f"Question number {n}", message_id=f"q{n}@x.org")


def ids(h: Harness) -> list[str]:
    return [str(r[0]) for r in h.rows("SELECT platform_message_id FROM messages ORDER BY id")]


def cursor(h: Harness) -> dict[str, int]:
    [(raw,)] = h.rows("SELECT value FROM connector_state WHERE connector = 'email' AND"
                      " key = 'cursor'")
    return dict(json.loads(str(raw)))


async def cursor_at(h: Harness, uid: int, timeout: float = 10.0) -> dict[str, int]:
    """Wait until the IMAP loop has committed its cursor at `uid`: it has handed over every
    mail up to there and is back waiting for more (nothing else is still on its way)."""
    async def read() -> dict[str, int]:
        return cursor(h) if h.count("connector_state") else {}
    return await poll(read, lambda got: got.get("last_uid") == uid,
                      f"the email cursor at UID {uid}", timeout)


@pytest.mark.backends("sqlite")  # two bridges, one after the other, on one SQLite file
async def test_restart_neither_misses_nor_reimports(
    dovecot: Dovecot, smtp: SmtpReceiver, make_harness: HarnessFactory, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(imap, "BATCH", 2)  # several SEARCH rounds per wake-up
    overrides = {"connectors.email": email_config(dovecot, smtp),
                 "storage": {"url": f"sqlite:///{tmp_path / 'email.db'}"}}
    await dovecot.append(mail(1), mail(2), mail(3))
    first = await make_harness(overrides, env=EMAIL_ENV)
    await first.wait_rows("SELECT COUNT(*) FROM messages", [(3,)])
    await first.bridge.stop()
    await dovecot.append(mail(4))  # arrives while the bridge is down
    second = await make_harness(overrides, env=EMAIL_ENV)
    await second.wait_rows("SELECT COUNT(*) FROM messages", [(4,)])
    await dovecot.append(mail(5))
    await second.wait_rows("SELECT COUNT(*) FROM messages", [(5,)])
    await cursor_at(second, 5)  # the restart went on from UID 3, not from 0
    assert ids(second) == [f"q{n}@x.org" for n in range(1, 6)]


async def test_the_server_dropping_the_connection_mid_idle_loses_nothing(
    private_dovecot: Dovecot, smtp: SmtpReceiver, make_harness: HarnessFactory,
    quick_imap_retries: None, monkeypatch: pytest.MonkeyPatch,
) -> None:
    dovecot = private_dovecot  # restarted below: a server of its own
    failed: list[int] = []  # the IMAP loop backs off once per failed session

    def recorded(attempt: int, **kw: Any) -> float:
        failed.append(attempt)
        return real_backoff(attempt, **kw)
    monkeypatch.setattr(imap, "backoff", recorded)
    h = await make_harness({"connectors.email": email_config(dovecot, smtp)}, env=EMAIL_ENV)
    await dovecot.append(mail(1))
    await h.wait_rows("SELECT COUNT(*) FROM messages", [(1,)])
    await cursor_at(h, 1)  # back in IDLE
    await dovecot.kick()
    await dovecot.append(mail(2))
    await h.wait_rows("SELECT COUNT(*) FROM messages", [(2,)], timeout=10)
    await cursor_at(h, 2)
    await dovecot.stop()  # a server restart: connection refused for a while...
    down = len(failed)
    await until(lambda: len(failed) >= down + 3, lambda: f"failed sessions: {failed}",
                timeout=10)  # ...the bridge found it down three times over
    await dovecot.start()
    await dovecot.append(mail(3))
    await h.wait_rows("SELECT COUNT(*) FROM messages", [(3,)], timeout=15)
    assert ids(h) == ["q1@x.org", "q2@x.org", "q3@x.org"]


async def test_polling_without_idle_and_only_new_mail_on_first_start(
    dovecot: Dovecot, smtp: SmtpReceiver, make_harness: HarnessFactory,
) -> None:
    await dovecot.append(mail(1))  # there before the bridge ever ran: not imported
    h = await make_harness({"connectors.email": email_config(
        dovecot, smtp, idle=False, poll_interval=0.2, import_existing=False)}, env=EMAIL_ENV)
    await h.wait_rows("SELECT COUNT(*) FROM connector_state WHERE key = 'cursor'", [(1,)])
    await dovecot.append(mail(2))
    await h.wait_rows("SELECT COUNT(*) FROM messages", [(1,)])
    await cursor_at(h, 2)
    assert ids(h) == ["q2@x.org"]


@pytest.mark.parametrize("processed", ["seen", "move"])
async def test_processed_mail_is_flagged_or_moved_after_the_commit(
    dovecot: Dovecot, smtp: SmtpReceiver, make_harness: HarnessFactory, processed: str,
) -> None:
    h = await make_harness({"connectors.email": email_config(
        dovecot, smtp, processed=processed, processed_mailbox=DONE)}, env=EMAIL_ENV)
    away = customer_mail(ANN, "Out of office", "Away", message_id="ooo@x.org",
                         Auto_Submitted="auto-replied")
    await dovecot.append(mail(1), away, mail(2))
    await h.wait_rows("SELECT COUNT(*) FROM messages", [(2,)])
    await cursor_at(h, 3)
    inbox = await poll(
        dovecot.flags,
        lambda inbox: (sum("\\Seen" in f for f in inbox) == 2 if processed == "seen"
                       else len(inbox) == 1),
        "the two mails taken up to be flagged or moved")
    # Noise (here an auto-reply) is not taken up, so it is left as it was, for a person.
    if processed == "seen":
        assert ["\\Seen" in f for f in inbox] == [True, False, True]
    else:
        assert len(inbox) == 1 and "UID 2 " in inbox[0]
        assert len(await dovecot.flags(DONE)) == 2


@pytest.mark.backends("sqlite", "postgres")  # SQL of the pipeline
async def test_a_new_uidvalidity_rereads_recent_mail_without_duplicates(
    dovecot: Dovecot, smtp: SmtpReceiver, make_harness: HarnessFactory,
) -> None:
    await dovecot.recreate(SUPPORT)
    h = await make_harness({"connectors.email": email_config(dovecot, smtp, mailbox=SUPPORT)},
                           env=EMAIL_ENV)
    await dovecot.append(mail(1), mailbox=SUPPORT)
    await h.wait_rows("SELECT COUNT(*) FROM messages", [(1,)])
    before = cursor(h)["uidvalidity"]
    await h.bridge.connectors["email"].stop()
    await dovecot.recreate(SUPPORT)  # e.g. restored from a backup: all UIDs are new
    await dovecot.append(mail(1), mail(2), mailbox=SUPPORT)
    await h.bridge.connectors["email"].start()
    await h.wait_rows("SELECT COUNT(*) FROM messages", [(2,)])
    assert (await cursor_at(h, 2))["uidvalidity"] != before
    assert ids(h) == ["q1@x.org", "q2@x.org"]


async def test_a_mail_over_the_size_limit_arrives_with_its_headers_only(
    dovecot: Dovecot, smtp: SmtpReceiver, make_harness: HarnessFactory,
) -> None:
    h = await make_harness({"connectors.email": email_config(
        dovecot, smtp, max_message_bytes=4096)}, env=EMAIL_ENV)
    big = customer_mail(ANN, "Logs", "See the logs.", message_id="big@x.org",
                        files=(("logs.bin", "application/octet-stream", os.urandom(20000)),))
    await dovecot.append(big, mail(2))
    await h.wait_rows("SELECT COUNT(*) FROM messages", [(2,)])
    assert h.rows("SELECT platform_message_id, text FROM messages ORDER BY id")[0] == (
        "big@x.org", "Logs\n\n(This mail is over the 4 KB import limit: read it in the "
                     "mailbox.)")
    assert h.rows("SELECT COUNT(*) FROM outbox WHERE kind = 'slack_file'") == [(0,)]


async def test_the_cursor_passes_a_mail_only_after_its_commit(
    dovecot: Dovecot, smtp: SmtpReceiver, make_harness: HarnessFactory,
    monkeypatch: pytest.MonkeyPatch, quick_imap_retries: None,
) -> None:
    h = await make_harness({"connectors.email": email_config(dovecot, smtp, processed="seen")},
                           env=EMAIL_ENV)
    store = h.bridge.store
    assert store is not None
    real = store.ingest_inbound
    seen_at_failure: list[tuple[int, list[str]]] = []

    async def flaky(items: Sequence[InboundMessage], *args: Any,
                    **kw: Any) -> list[IngestResult]:
        if len(seen_at_failure) < 2:
            seen_at_failure.append((cursor(h)["last_uid"], await dovecot.flags()))
            raise StoreError("commit failed: disk I/O error")
        return await real(items, *args, **kw)

    monkeypatch.setattr(store, "ingest_inbound", flaky)
    await dovecot.append(mail(1))
    await h.wait_rows("SELECT COUNT(*) FROM messages", [(1,)], timeout=15)
    # While the commit failed the cursor stayed before the mail and it was not marked read.
    assert seen_at_failure == [(0, ["1 FETCH (UID 1 FLAGS ())"])] * 2
    await h.wait_rows("SELECT COUNT(*) FROM connector_state WHERE key = 'cursor' AND"
                      " value LIKE '%\"last_uid\": 1,%'", [(1,)])
    assert "\\Seen" in (await dovecot.flags())[0]


@pytest.mark.backends("sqlite")
async def test_a_store_that_keeps_failing_is_retried_with_growing_delays(
    dovecot: Dovecot, smtp: SmtpReceiver, make_harness: HarnessFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    h = await make_harness({"connectors.email": email_config(dovecot, smtp)}, env=EMAIL_ENV)
    store = h.bridge.store
    assert store is not None

    async def down(items: Sequence[InboundMessage], *args: Any,
                   **kw: Any) -> list[IngestResult]:
        raise StoreError("could not connect to the database")

    monkeypatch.setattr(store, "ingest_inbound", down)
    waits: list[tuple[int, float]] = []  # (failures so far, the delay the loop chose)

    def recorded(attempt: int, **kw: Any) -> float:
        delay = real_backoff(attempt, **kw)
        waits.append((attempt, delay))
        return delay / 100  # the loop's own delays, a hundred times faster
    monkeypatch.setattr(imap, "backoff", recorded)
    poller = h.bridge.connectors["email"].poller  # type: ignore[attr-defined]
    await dovecot.append(mail(1))
    await until(lambda: len(waits) >= 4, lambda: f"backoffs: {waits}", timeout=10)
    # Each failed session backs off further: 0.5-1 s, 1-2 s, 2-4 s, 4-8 s (base 1 s).
    assert [attempt for attempt, _ in waits[:4]] == [1, 2, 3, 4]
    assert all(2 ** (n - 2) <= delay <= 2 ** (n - 1) for n, delay in waits[:4]), waits
    assert poller.sessions >= 4
    assert cursor(h)["last_uid"] == 0 and h.count("messages") == 0


async def test_a_mail_the_server_never_hands_over_becomes_a_placeholder(
    dovecot: Dovecot, smtp: SmtpReceiver, make_harness: HarnessFactory,
    monkeypatch: pytest.MonkeyPatch, quick_imap_retries: None,
) -> None:
    real = imap._literal

    def broken(lines: list[bytes]) -> bytes | None:  # as if the server's answer were garbled
        raw = real(lines)
        return None if raw is not None and b"q1@x.org" in raw else raw

    monkeypatch.setattr(imap, "_literal", broken)
    h = await make_harness({"connectors.email": email_config(dovecot, smtp)}, env=EMAIL_ENV)
    await dovecot.append(mail(1), mail(2))
    await h.wait_rows("SELECT COUNT(*) FROM messages", [(2,)], timeout=20)
    await h.wait_rows("SELECT COUNT(*) FROM connector_state WHERE key = 'cursor' AND"
                      " value LIKE '%\"last_uid\": 2,%'", [(1,)])  # the mailbox went on
    assert ids(h)[1] == "q2@x.org"
    [(text, files)] = h.rows("SELECT text, attachments FROM messages ORDER BY id LIMIT 1")
    assert text == "(This mail could not be read: see the attached original.)"
    [eml] = [Attachment(**a) for a in json.loads(str(files))]
    data = await h.bridge.connectors["email"].fetch_file(eml, 1 << 20)
    assert b"mailbox 'INBOX', UID 1, UIDVALIDITY" in data  # where to find it


@pytest.mark.backends("sqlite")
async def test_idle_is_renewed_on_the_same_connection(
    dovecot: Dovecot, smtp: SmtpReceiver, make_harness: HarnessFactory,
) -> None:
    h = await make_harness({"connectors.email": email_config(dovecot, smtp, idle_renew=0.3)},
                           env=EMAIL_ENV)
    poller = h.bridge.connectors["email"].poller  # type: ignore[attr-defined]
    await h.wait_rows("SELECT COUNT(*) FROM connector_state WHERE key = 'cursor'", [(1,)])
    # a few renewals (IDLE, DONE, a new round, IDLE...)
    await until(lambda: poller.rounds >= 3, lambda: f"{poller.rounds} rounds", timeout=10)
    await dovecot.append(mail(1))
    await h.wait_rows("SELECT COUNT(*) FROM messages", [(1,)], timeout=3)
    assert poller.sessions == 1 and poller.rounds >= 3
