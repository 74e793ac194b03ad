"""Outbound mail headers and reply tokens, as pure functions."""

from __future__ import annotations

import pytest

from connectors.email.imap import mailbox_arg
from connectors.email.outbound import Reply, compose, reply_subject
from connectors.email.settings import EmailSettings
from connectors.email.threads import Thread, reply_token, tokens_in

SETTINGS = EmailSettings(address="support@example.com", display_name="Example Support",
                         imap_host="imap.example.com", imap_user="u", imap_password="p",
                         smtp_host="smtp.example.com", reply_token_secret="s" * 32)


@pytest.mark.parametrize("subject, expected", [
    ("Order 123", "Re: Order 123"), ("Re: Order 123", "Re: Order 123"),
    ("AW: Bestellung", "AW: Bestellung"), ("RE[2]: x", "RE[2]: x"), ("", "Re: your message"),
])
def test_reply_subject(subject: str, expected: str) -> None:
    assert reply_subject(subject) == expected


@pytest.mark.parametrize("automatic", [False, True])
def test_replies_thread_and_only_automatic_ones_are_auto_submitted(automatic: bool) -> None:
    thread = Thread(subject="Order 123", parent="c2@x.org", references=["c1@x.org", "c2@x.org"])
    msg = compose(SETTINGS, Reply(to="ann@example.org", author="Dana", text="Hi", token="abc",
                                  thread=thread, automatic=automatic), 1_800_000_000.0)
    assert msg["From"] == '"Dana (Example Support)" <support@example.com>'
    assert msg["Reply-To"] == "Example Support <support+abc@example.com>"
    assert (msg["In-Reply-To"], msg["References"]) == ("<c2@x.org>", "<c1@x.org> <c2@x.org>")
    assert msg["Message-ID"].endswith("@example.com>")
    assert msg["Auto-Submitted"] == ("auto-replied" if automatic else None)


def test_a_first_mail_has_no_in_reply_to() -> None:
    msg = compose(SETTINGS, Reply(to="ann@example.org", author="Dana", text="Hi", token="abc",
                                  thread=Thread()), 1_800_000_000.0)
    assert msg["In-Reply-To"] is None and msg["References"] is None


def test_reply_tokens_are_keyed_and_found_in_plus_addresses() -> None:
    token = reply_token("secret-one-0123456789", "ann@example.org")
    assert len(token) == 20 and token == reply_token("secret-one-0123456789", "Ann@Example.org")
    assert token != reply_token("secret-two-0123456789", "ann@example.org")
    assert token != reply_token("secret-one-0123456789", "bob@example.org")
    assert tokens_in([f"support+{token}@example.com", "support+x@other.com",
                      "supporter+y@example.com", "support@example.com"],
                     "support@example.com") == [token]


def test_settings_refuse_a_bad_address_or_a_short_secret() -> None:
    base = SETTINGS.model_dump()
    for bad in ("Support <support@example.com>", "@example.com", "support@", "a b@x.com"):
        with pytest.raises(ValueError, match="address"):
            EmailSettings(**{**base, "address": bad})
    with pytest.raises(ValueError, match="smtp_password is required"):
        EmailSettings(**{**base, "smtp_user": "support@example.com", "smtp_password": ""})
    with pytest.raises(ValueError, match="at least 16"):
        EmailSettings(**{**base, "reply_token_secret": "short"})


@pytest.mark.parametrize("name, arg", [
    ("INBOX", '"INBOX"'), ("Entwürfe", '"Entw&APw-rfe"'), ("A & B", '"A &- B"'),
    ("日本語", '"&ZeVnLIqe-"'), ('say "hi"', '"say \\"hi\\""'),
])
def test_mailbox_names_in_modified_utf7(name: str, arg: str) -> None:
    assert mailbox_arg(name) == arg
