"""Hostile and broken mail through the real app: stored (or dropped) on both stores, and
never blocking the mail behind it."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any

import pytest

from connectors.email.connector import clean
from storage.base import StoreError
from tests.conftest import HarnessFactory
from tests.dovecot import Dovecot
from tests.mailservers import EMAIL_ENV, SmtpReceiver, customer_mail, email_config
from vocab.models import InboundMessage, IngestResult

NUL_BODY = (b"From: Nul <nul@example.org>\r\nTo: support@example.com\r\nSubject: a\x00b\r\n"
            b"Message-ID: <nul@example.org>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
            b"before\x00after \x07bell\r\n")
RAW_8BIT = (b"From: \xff\xfe Odd <odd@example.org>\r\nTo: support@example.com\r\nSubject: "
            b"\xe9t\xe9 \xff\r\nMessage-ID: <odd-\xff@example.org>\r\n\r\nbody \xff\xfe\r\n")
NO_SENDER = b"To: support@example.com\r\nSubject: who?\r\nMessage-ID: <anon@x>\r\n\r\nhi\r\n"
BROKEN_MIME = (b"From: Mime <mime@example.org>\r\nTo: support@example.com\r\nMessage-ID: "
               b"<mime@example.org>\r\nContent-Type: multipart/mixed; boundary=\r\n"
               b"Content-Transfer-Encoding: base64\r\n\r\n--\r\n!!!\r\n")


async def test_hostile_mail_is_stored_clean_and_blocks_nothing(
    dovecot: Dovecot, smtp: SmtpReceiver, make_harness: HarnessFactory,
) -> None:
    h = await make_harness({"connectors.email": email_config(dovecot, smtp)}, env=EMAIL_ENV)
    good = customer_mail("Ann <ann@example.org>", "Normal", "All fine", message_id="ok@x.org")
    await dovecot.append(NUL_BODY, RAW_8BIT, NO_SENDER, BROKEN_MIME, good)
    await h.wait_rows("SELECT COUNT(*) FROM messages WHERE platform_message_id = 'ok@x.org'",
                      [(1,)], timeout=10)
    await h.drained()
    rows: dict[str, str] = {str(k): str(v) for k, v in h.rows(
        "SELECT platform_message_id, text FROM messages")}
    # Dovecot stores NUL bytes as 0x80 (read as windows-1252: €); the bell is dropped.
    assert rows.pop("nul@example.org") == "a€b\n\nbefore€after bell"
    assert rows.pop("ok@x.org") == "Normal\n\nAll fine"
    assert rows.pop("mime@example.org")  # what could be read, with the original attached
    [(odd_id, odd_text)] = rows.items()  # the raw 8-bit one, decoded as windows-1252
    assert odd_id.startswith("odd-") and odd_text == "été ÿ\n\nbody ÿþ"
    # No sender: nobody to answer, no conversation.
    assert sorted(r[0] for r in h.rows("SELECT address FROM conversations")) == [
        "ann@example.org", "mime@example.org", "nul@example.org", "odd@example.org"]


def test_clean_leaves_text_any_store_takes() -> None:
    assert clean("a\x00b\x07c\td\ne\udcff") == "abc\td\ne?"


async def test_a_mail_the_store_keeps_refusing_shows_as_unreadable_and_blocks_nothing(
    dovecot: Dovecot, smtp: SmtpReceiver, make_harness: HarnessFactory,
    monkeypatch: pytest.MonkeyPatch, quick_imap_retries: None,
) -> None:
    h = await make_harness({"connectors.email": email_config(dovecot, smtp)}, env=EMAIL_ENV)
    store = h.bridge.store
    assert store is not None
    real = store.ingest_inbound
    refused: list[str] = []

    async def picky(items: Sequence[InboundMessage], *args: Any,
                    **kw: Any) -> list[IngestResult]:
        if any(i.platform_message_id == "poison@x.org" for i in items):
            refused.append("poison@x.org")
            raise StoreError("value too long for the index")
        return await real(items, *args, **kw)

    monkeypatch.setattr(store, "ingest_inbound", picky)
    # A Message-ID no index takes (PostgreSQL: over about 2.7 KB), the refused one, a good one.
    long_id = secrets.token_hex(1600) + "@example.org"
    await dovecot.append(
        customer_mail("Pat <pat@example.org>", "Long id", "Hello", message_id=long_id),
        customer_mail("Ann <ann@example.org>", "Refused", "Secret", message_id="poison@x.org"),
        customer_mail("Bob <bob@example.org>", "Normal", "All fine", message_id="ok@x.org"))
    await h.wait_rows("SELECT COUNT(*) FROM messages WHERE platform_message_id = 'ok@x.org'",
                      [(1,)], timeout=20)
    assert len(refused) == 3  # tried three times, then handed over as unreadable
    rows = h.rows("SELECT c.address, m.text, m.platform_message_id, m.attachments FROM messages"
                  " m JOIN conversations c ON c.id = m.conversation_id ORDER BY m.id")
    assert [r[:2] for r in rows] == [
        ("pat@example.org", "Long id\n\nHello"),
        ("unknown@invalid", "(This mail could not be read: see the attached original.)"),
        ("bob@example.org", "Normal\n\nAll fine")]
    assert str(rows[0][2]).startswith("sha256:") and "original.eml" in str(rows[1][3])
