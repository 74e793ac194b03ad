"""The email connector through the real app, a real Dovecot and a real SMTP server."""

from __future__ import annotations

import re

import pytest

from tests.conftest import AGENT, CHANNEL, Harness, HarnessFactory
from tests.dovecot import Dovecot
from tests.mailservers import (
    EMAIL_ENV,
    SmtpReceiver,
    customer_mail,
    email_config,
)
from vocab.models import ConversationStatus

# SQLite only: the email connector's protocol (MIME, threading headers, bounces); its dedupe-by-
# thread test runs on both.
pytestmark = pytest.mark.backends("sqlite")

ANN = "Ann Kim <ann@example.org>"
PDF = b"%PDF-1.4\n" + bytes(range(256)) * 8


@pytest.fixture
async def h(dovecot: Dovecot, smtp: SmtpReceiver, make_harness: HarnessFactory) -> Harness:
    return await make_harness({"connectors.email": email_config(dovecot, smtp)}, env=EMAIL_ENV)


async def thread_of(h: Harness, address: str, timeout: float = 5.0) -> str:
    return await h.thread_at(address, timeout)


@pytest.mark.backends("sqlite", "postgres")  # SQL of the pipeline
async def test_threading_through_a_reply_a_rewritten_in_reply_to_and_the_reply_token(
    h: Harness, dovecot: Dovecot, smtp: SmtpReceiver,
) -> None:
    await dovecot.append(customer_mail(ANN, "Order 123 is late", "Where is it?",
                                       message_id="c1@example.org"))
    await h.wait_rows("SELECT text FROM messages", [("Order 123 is late\n\nWhere is it?",)])
    thread = await thread_of(h, "ann@example.org")
    assert await h.agent_says(thread, "It ships *today*") == 200
    [sent] = await smtp.wait_for(1)
    out = sent.message
    assert sent.rcpt_tos == ["ann@example.org"] and sent.mail_from == "support@example.com"
    assert (out["In-Reply-To"], out["References"]) == ("<c1@example.org>", "<c1@example.org>")
    assert out["Subject"] == "Re: Order 123 is late"
    assert out["Auto-Submitted"] is None  # a human's reply
    body = out.get_body(("plain",))
    assert body is not None and body.get_content().replace("\r\n", "\n") == (
        "It ships today\n\n-- \nDana\nExample Support\n")  # plain text, signed
    reply_to = out["Reply-To"].addresses[0].addr_spec
    assert re.fullmatch(r"support\+[0-9a-f]{20}@example\.com", reply_to)
    ours = str(out["Message-ID"]).strip("<>")
    await h.wait_rows("SELECT state, sent_platform_id FROM messages WHERE direction = 'out'",
                      [("sent", ours)])

    # A client that rewrote In-Reply-To (References still name our reply)...
    await dovecot.append(customer_mail(
        ANN, "Re: Order 123 is late", "Thanks!\n\nOn Mon, Support wrote:\n> It ships today",
        message_id="c2@example.org", In_Reply_To="<rewritten@client.invalid>",
        References=f"<c1@example.org> <{ours}>"))
    # ...and a colleague writing from another address, no ids at all, to the Reply-To.
    await dovecot.append(customer_mail("Bob <bob@example.org>", "Fwd: late order",
                                       "Any news?", message_id="c3@example.org", to=reply_to))
    await h.wait_rows("SELECT COUNT(*) FROM messages WHERE direction = 'in'", [(3,)])
    assert h.rows("SELECT address FROM conversations") == [("ann@example.org",)]
    assert h.rows("SELECT text FROM messages WHERE direction = 'in' ORDER BY id")[1:] == [
        ("Thanks!",), ("Any news?",)]  # the quote is left out of the thread
    await h.slack.wait_for("chat.postMessage", 3)  # the first mail (parent) and two replies
    texts = [m["text"] for m in h.slack.thread(CHANNEL, thread)]
    assert any("Thanks!" in t for t in texts) and not any("> It ships" in t for t in texts)

    assert await h.agent_says(thread, "You're welcome") == 200
    second = (await smtp.wait_for(2))[1].message
    assert second["In-Reply-To"] == "<c3@example.org>"
    assert second["References"].split() == [
        "<c1@example.org>", f"<{ours}>", "<c2@example.org>", "<c3@example.org>"]


async def test_same_subject_from_others_or_a_forged_token_stays_separate(
    h: Harness, dovecot: Dovecot,
) -> None:
    await dovecot.append(
        customer_mail(ANN, "Invoice question", "Is VAT included?", message_id="a@x.org"),
        customer_mail("Carl <carl@example.net>", "Invoice question", "Wrong amount",
                      message_id="b@y.org", In_Reply_To="<a@x.org-not-ours@z>"),
        customer_mail("Eve <eve@example.net>", "Re: Invoice question", "Show me Ann's",
                      message_id="c@z.org", to="support+0123456789abcdef0123@example.com"),
    )
    await h.wait_rows("SELECT COUNT(*) FROM messages", [(3,)])
    assert sorted(h.rows("SELECT address FROM conversations")) == [
        ("ann@example.org",), ("carl@example.net",), ("eve@example.net",)]


async def test_html_only_and_non_utf8_mail_read_well(h: Harness, dovecot: Dovecot) -> None:
    html = "<p>Hello,</p><p>the <b>lid</b> is broken.</p><blockquote>old</blockquote>"
    latin = ("From: Zoé <zoe@example.fr>\r\nTo: support@example.com\r\nSubject: "
             "=?iso-8859-1?q?R=E9clamation?=\r\nMessage-ID: <z1@example.fr>\r\nMIME-Version: 1.0"
             "\r\nContent-Type: text/plain; charset=iso-8859-1\r\n\r\nÇa coûte 20 € !\r\n")
    await dovecot.append(customer_mail(ANN, "Broken", "", html=html, message_id="h@x.org"),
                         latin.encode("cp1252"))
    await h.wait_rows("SELECT COUNT(*) FROM messages", [(2,)])
    assert h.rows("SELECT text FROM messages ORDER BY id") == [
        ("Broken\n\nHello,\n\nthe lid is broken.",), ("Réclamation\n\nÇa coûte 20 € !",)]
    assert h.rows("SELECT author_name FROM messages ORDER BY id")[1] == (
        "Zoé (zoe@example.fr)",)


async def test_files_both_ways(h: Harness, dovecot: Dovecot, smtp: SmtpReceiver) -> None:
    await dovecot.append(customer_mail(ANN, "Invoice", "Attached.", message_id="f@x.org",
                                       files=(("facture n°1.pdf", "application/pdf", PDF),)))
    thread = await thread_of(h, "ann@example.org")
    await h.slack.wait_for("files.completeUploadExternal", 1)
    [uploaded] = [f for f in h.slack.files.values() if f.get("completed")]
    assert (uploaded["name"], uploaded["content"]) == ("facture n°1.pdf", PDF)

    photo = h.slack.add_file(PDF[:300], name="label.png", mimetype="image/png")
    event = h.agent.message_event(channel=CHANNEL, user=AGENT, text="Here is the label",
                                  thread_ts=thread, files=[photo])
    assert (await h.agent.post(event))[0] == 200
    mails = await smtp.wait_for(2)
    files = [(p.get_filename(), p.get_content()) for m in mails
             for p in m.message.iter_attachments()]
    assert files == [("label.png", PDF[:300])]
    first, second = (m.message for m in mails)  # the text, then the file, threaded
    assert (first["In-Reply-To"], second["In-Reply-To"]) == ("<f@x.org>", first["Message-ID"])


async def test_out_of_office_is_ignored_and_a_bounce_fails_the_reply(
    h: Harness, dovecot: Dovecot, smtp: SmtpReceiver,
) -> None:
    await dovecot.append(customer_mail(ANN, "Hi", "Hello", message_id="o1@x.org"))
    thread = await thread_of(h, "ann@example.org")
    assert await h.agent_says(thread, "Hello Ann") == 200
    ours = str((await smtp.wait_for(1))[0].message["Message-ID"])
    ooo = customer_mail(ANN, "Out of office: Re: Hi", "I am away until Monday.",
                        message_id="o2@x.org", In_Reply_To=ours, Auto_Submitted="auto-replied")
    bounce = (f"From: MAILER-DAEMON@mx.example.org\r\nTo: support@example.com\r\nSubject: "
              f"Undelivered\r\nMessage-ID: <dsn1@mx>\r\nMIME-Version: 1.0\r\nContent-Type: "
              f"multipart/report; report-type=delivery-status; boundary=B\r\n\r\n--B\r\n"
              f"Content-Type: text/plain\r\n\r\nSorry.\r\n--B\r\nContent-Type: message/delivery-"
              f"status\r\n\r\nReporting-MTA: dns; mx\r\n\r\nFinal-Recipient: rfc822; ann@example"
              f".org\r\nAction: failed\r\nStatus: 5.2.2\r\nDiagnostic-Code: smtp; 552 mailbox "
              f"full\r\n\r\n--B\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: {ours}"
              f"\r\n\r\n--B--\r\n").encode()
    await dovecot.append(ooo, bounce)
    await h.wait_rows("SELECT state FROM messages WHERE direction = 'out'", [("failed",)])
    assert "mailbox full" in str(h.rows("SELECT error FROM messages WHERE direction = 'out'"))
    await h.slack.wait_for("chat.postMessage", 2)  # the parent, then the failure notice
    assert "Not delivered" in h.slack.thread(CHANNEL, thread)[-1]["text"]
    await h.drained()
    assert h.count("messages") == 2 and h.count("conversations") == 1  # no OOO, no DSN
    assert len(smtp.received) == 1  # neither was answered


async def test_a_new_mail_never_reopens_a_closed_conversation_but_a_reply_does(
    h: Harness, dovecot: Dovecot, smtp: SmtpReceiver,
) -> None:
    await dovecot.append(customer_mail(ANN, "Invoice question", "Is VAT included?",
                                       message_id="v1@example.org"))
    thread = await thread_of(h, "ann@example.org")
    assert await h.agent_says(thread, "Yes, it is.") == 200
    ours = str((await smtp.wait_for(1))[0].message["Message-ID"])
    [(first,)] = h.rows("SELECT id FROM conversations")
    router = h.bridge.router
    assert router is not None
    await router.set_status(first, ConversationStatus.CLOSED, "Dana")
    # A reply naming the conversation's ids reopens it (within reopen_within_hours)...
    await dovecot.append(customer_mail(ANN, "Re: Invoice question", "One more thing",
                                       message_id="v2@example.org", In_Reply_To=ours))
    await h.wait_rows("SELECT status FROM conversations", [("open",)])
    await router.set_status(first, ConversationStatus.CLOSED, "Dana")
    # ...a new mail from the same sender (in another case) with the same subject, naming
    # nothing, does not: it starts a new conversation.
    await dovecot.append(customer_mail("Ann <ANN@Example.ORG>", "Invoice question",
                                       "Another invoice is wrong.", message_id="v3@example.org"))
    await h.wait_rows("SELECT COUNT(*) FROM conversations", [(2,)])
    assert h.rows("SELECT id, address, status FROM conversations ORDER BY id") == [
        (first, "ann@example.org", "closed"), (first + 1, "ann@example.org", "open")]
    assert h.rows("SELECT conversation_id FROM messages WHERE direction = 'in' ORDER BY id") == [
        (first,), (first,), (first + 1,)]
