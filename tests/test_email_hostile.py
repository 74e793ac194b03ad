"""Hostile and broken mail through the real app: stored (or dropped) on both stores, and
never blocking the mail behind it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from connectors.email.connector import clean
from tests.conftest import HarnessFactory
from tests.dovecot import Dovecot
from tests.mailservers import EMAIL_ENV, SmtpReceiver, customer_mail, email_config
from tests.test_loop import settle

NUL_BODY = (b"From: Nul <nul@example.org>\r\nTo: support@example.com\r\nSubject: a\x00b\r\n"
            b"Message-ID: <nul@example.org>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
            b"before\x00after \x07bell\r\n")
RAW_8BIT = (b"From: \xff\xfe Odd <odd@example.org>\r\nTo: support@example.com\r\nSubject: "
            b"\xe9t\xe9 \xff\r\nMessage-ID: <odd-\xff@example.org>\r\n\r\nbody \xff\xfe\r\n")
NO_SENDER = b"To: support@example.com\r\nSubject: who?\r\nMessage-ID: <anon@x>\r\n\r\nhi\r\n"
BROKEN_MIME = (b"From: Mime <mime@example.org>\r\nTo: support@example.com\r\nMessage-ID: "
               b"<mime@example.org>\r\nContent-Type: multipart/mixed; boundary=\r\n"
               b"Content-Transfer-Encoding: base64\r\n\r\n--\r\n!!!\r\n")


@pytest.fixture
async def dovecot() -> AsyncIterator[Dovecot]:
    server = Dovecot()
    try:
        await server.start()
        yield server
    finally:
        await server.stop()
        server.close()


@pytest.fixture
def smtp() -> Iterator[SmtpReceiver]:
    receiver = SmtpReceiver()
    controller = receiver.start()
    yield receiver
    controller.stop()


async def test_hostile_mail_is_stored_clean_and_blocks_nothing(
    dovecot: Dovecot, smtp: SmtpReceiver, make_harness: HarnessFactory,
) -> None:
    h = await make_harness({"connectors.email": email_config(dovecot, smtp)}, env=EMAIL_ENV)
    good = customer_mail("Ann <ann@example.org>", "Normal", "All fine", message_id="ok@x.org")
    await dovecot.append(NUL_BODY, RAW_8BIT, NO_SENDER, BROKEN_MIME, good)
    await h.wait_rows("SELECT COUNT(*) FROM messages WHERE platform_message_id = 'ok@x.org'",
                      [(1,)], timeout=10)
    await settle()
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
