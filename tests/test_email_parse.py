"""The email parser on raw RFC 5322 bytes: bodies, charsets, quotes, files, noise, bounces."""

from __future__ import annotations

import sysconfig
import time
from pathlib import Path

import pytest

from connectors.email.parse import find_part, parse_mail
from connectors.email.text import html_to_text, strip_reply

SUPPORT = "support@example.com"
CORPUS = Path(sysconfig.get_paths()["stdlib"]) / "test" / "test_email" / "data"  # CPython's
OWN = Path(__file__).parent / "fixtures" / "email"


def mail(body: bytes, *headers: str, ctype: str = "text/plain; charset=utf-8") -> bytes:
    head = ["From: Ann Kim <ann@example.org>", f"To: {SUPPORT}", "Subject: Order 123",
            "Message-ID: <a1@example.org>", "MIME-Version: 1.0", f"Content-Type: {ctype}",
            *headers]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def test_plain_reply_loses_quote_and_signature_but_keeps_the_full_text() -> None:
    raw = mail(b"Still waiting.\r\n\r\nOn Mon, 1 Dec 2026 at 10:00, Support <support@example.com>"
               b"\r\nwrote:\r\n> Your order ships today.\r\n", "In-Reply-To: <ours@example.com>",
               "References: <first@example.org> <ours@example.com>")
    got = parse_mail(raw, SUPPORT)
    assert got.text == "Still waiting."
    assert "ships today" in got.full_text and got.trimmed
    assert got.message_id == "a1@example.org" and got.sender == "ann@example.org"
    assert got.references == ["ours@example.com", "first@example.org"]
    assert got.noise is None


@pytest.mark.parametrize("text, kept", [
    ("Thanks!\n-- \nAnn Kim\nACME", "Thanks!"),
    ("Thanks!\n\nSent from my iPhone", "Thanks!"),
    ("Yes please.\n\n-----Original Message-----\nFrom: Support\nSent: Monday", "Yes please."),
    ("Ok.\n\nFrom: Support <s@x.com>\nSent: Monday\nTo: Ann\nSubject: Re: x\n\nold", "Ok."),
    ("Merci.\n\nLe lun. 1 déc. 2026 à 10:00, Support a écrit :\n> old", "Merci."),
    ("> quoted only\n> more", "> quoted only\n> more"),  # nothing new: keep it all
])
def test_strip_reply(text: str, kept: str) -> None:
    assert strip_reply(text) == kept


def test_html_only_mail_becomes_readable_text_without_the_quoted_part() -> None:
    html = (b"<html><head><style>p{color:red}</style></head><body><p>Hello,</p><p>The <b>box"
            b"</b> was&nbsp;empty. See <a href='https://x.example/p'>photo</a>.</p><ul><li>one"
            b"</li><li>two</li></ul><div class='gmail_quote'>On Mon wrote:<blockquote>old"
            b"</blockquote></div></body></html>")
    got = parse_mail(mail(html, ctype="text/html; charset=utf-8"), SUPPORT)
    assert got.text == ("Hello,\n\nThe box was empty. See photo (https://x.example/p).\n\n"
                        "• one\n\n• two")
    assert "old" in got.full_text and "color" not in got.full_text
    assert html_to_text("<p>a<br>b</p><script>x()</script>") == "a\nb"
    newsletter = "".join(f"<p><a href='https://x.example/{i}'>item {i}</a></p>"
                         for i in range(20000))
    started = time.monotonic()
    assert html_to_text(newsletter).endswith("item 19999 (https://x.example/19999)")
    assert time.monotonic() - started < 5  # linear in the size, not quadratic


@pytest.mark.parametrize("ctype, body, expected", [
    ("text/plain; charset=iso-8859-1", "Réclamation – 20 €".encode("cp1252"),
     "Réclamation – 20 €"),  # labelled latin-1, really windows-1252
    ("text/plain", "Grüße".encode(), "Grüße"),  # no charset, really UTF-8
    ("text/plain; charset=x-no-such-charset", "Olá".encode(), "Olá"),
    ("text/plain; charset=utf-8", b"caf\xe9 \xff", "café ÿ"),  # not UTF-8 at all
    ("text/plain; charset=koi8-r", "Привет".encode("koi8-r"), "Привет"),
])
def test_wrong_or_missing_charsets_never_crash(ctype: str, body: bytes, expected: str) -> None:
    assert parse_mail(mail(body, ctype=ctype), SUPPORT).text == expected


def test_encoded_headers_and_rfc2231_attachment_names() -> None:
    raw = (b"From: =?utf-8?q?Jos=C3=A9?= <jose@example.org>\r\nTo: support@example.com\r\n"
           b"Subject: =?utf-8?q?R=C3=A9clamation?=\r\nMIME-Version: 1.0\r\n"
           b"Content-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\n"
           b"Content-Type: text/plain; charset=utf-8\r\n\r\nSee attached.\r\n--XX\r\n"
           b"Content-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n"
           b"Content-Disposition: attachment; filename*=utf-8''facture%20n%C2%B01.pdf\r\n\r\n"
           b"JVBERi0xLjQK\r\n--XX--\r\n")
    got = parse_mail(raw, SUPPORT)
    assert (got.sender_name, got.subject, got.text) == ("José", "Réclamation", "See attached.")
    [file] = got.files
    assert (file.filename, file.mime_type) == ("facture n°1.pdf", "application/pdf")
    assert find_part(raw, file.index) == b"%PDF-1.4\n"
    assert got.message_id.startswith("sha256:")  # no Message-ID: a content hash


@pytest.mark.parametrize("header, reason", [
    ("Auto-Submitted: auto-replied", "Auto-Submitted: auto-replied"),
    ("Precedence: bulk", "Precedence: bulk"),
    ("List-Id: <news.example.org>", "List-Id"),
    ("Return-Path: <>", "Return-Path: <>"),
    ("X-Autoreply: yes", "X-Autoreply"),
    ("Precedence: auto_reply", "Precedence: auto_reply"),  # vacation responders without RFC 3834
    ("X-Auto-Response-Suppress: All\r\nAuto-Submitted: Auto-Generated", "Auto-Submitted: "
                                                                      "auto-generated"),
    ("Return-Path: < >", "Return-Path: <>"),
])
def test_automatic_mail_is_noise(header: str, reason: str) -> None:
    assert parse_mail(mail(b"I am away.", header), SUPPORT).noise == reason
    assert parse_mail(mail(b"hi", "Auto-Submitted: no"), SUPPORT).noise is None


def test_mailer_daemon_and_our_own_mail_are_noise() -> None:
    raw = mail(b"x").replace(b"ann@example.org", b"MAILER-DAEMON@mx.example.org")
    assert parse_mail(raw, SUPPORT).noise == "sent by mailer-daemon@mx.example.org"
    ours = mail(b"x").replace(b"ann@example.org", SUPPORT.encode())
    assert parse_mail(ours, SUPPORT).noise == "sent from the support address itself"
    plus = mail(b"x").replace(b"ann@example.org", b"Support+abc123@Example.com")
    assert parse_mail(plus, SUPPORT).noise == "sent from the support address itself"


def dsn(action: str) -> bytes:
    return (b"From: Mail Delivery System <MAILER-DAEMON@mx.example.org>\r\n"
            b"To: support@example.com\r\nSubject: Undelivered Mail\r\nAuto-Submitted: auto-"
            b"replied\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; report-type="
            b"delivery-status; boundary=B\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nSorry."
            b"\r\n--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx\r\n"
            b"\r\nFinal-Recipient: rfc822; gone@example.org\r\nAction: " + action.encode() +
            b"\r\nStatus: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 user unknown\r\n\r\n--B\r\n"
            b"Content-Type: text/rfc822-headers\r\n\r\nMessage-ID: <ours.1@example.com>\r\n"
            b"Subject: Re: x\r\n\r\n--B--\r\n")


def test_a_bounce_names_our_message_and_the_reason() -> None:
    got = parse_mail(dsn("failed"), SUPPORT)
    assert got.bounced == ["ours.1@example.com"] and "user unknown" in got.bounce_reason
    delayed = parse_mail(dsn("delayed"), SUPPORT)
    assert delayed.bounced == [] and delayed.noise  # only a warning: not a failure


@pytest.mark.parametrize("name, text, files", [
    ("outlook_html_reply.eml", "Grüße,\n\ndie Lieferung kam nicht an – bitte prüfen.\n\nJan", []),
    ("gmail_reply.eml", "Perfect, thank you — that works.", []),
    ("forward_inline_broken.eml", "See below and the screenshot",
     ["attachment-1.png", "attached-2.eml", "attachment-3.calendar", "Rechnung Ä.pdf"]),
])
def test_real_world_shapes(name: str, text: str, files: list[str]) -> None:
    got = parse_mail((OWN / name).read_bytes(), SUPPORT)
    assert (got.text, [f.filename for f in got.files]) == (text, files)
    assert got.noise is None


def test_a_bounce_without_a_report_still_names_our_message() -> None:
    raw = (b"From: MAILER-DAEMON@mx.example.org\r\nTo: support@example.com\r\nSubject: "
           b"failure notice\r\n\r\nHi. This is the qmail-send program.\r\n<gone@example.org>:"
           b"\r\n550 no such user\r\n--- Below this line is a copy of the message.\r\n\r\n"
           b"Message-ID: <ours.2@example.com>\r\nIn-Reply-To: <theirs@example.org>\r\n")
    got = parse_mail(raw, SUPPORT)
    assert got.bounced == ["ours.2@example.com"] and got.noise == "bounce"
    ooo = raw.replace(b"failure notice", b"Out of office")  # not a failure: just noise
    assert parse_mail(ooo, SUPPORT).bounced == []


def corpus() -> list[Path]:
    files = sorted(CORPUS.glob("msg_*.txt")) + sorted(OWN.glob("*.eml"))
    assert len(files) > 40, f"no corpus under {CORPUS}"
    return files


@pytest.mark.parametrize("path", corpus(), ids=lambda p: p.name)
def test_corpus_never_crashes_the_parser(path: Path) -> None:
    raw = path.read_bytes()
    got = parse_mail(raw, SUPPORT)
    assert got.message_id and isinstance(got.text, str)
    for file in got.files:
        assert find_part(raw, file.index) is not None
    for cut in (len(raw) // 3, len(raw) // 2):  # truncated mid-way, as a broken download
        parse_mail(raw[:cut], SUPPORT)
