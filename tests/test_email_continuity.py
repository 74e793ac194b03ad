"""Email and one customer across channels: a handoff code in the plus part of the support
address, beside the reply tokens of the same plus-addressing."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors.email.connector import EmailConnector
from connectors.email.parse import parse_mail
from connectors.email.threads import Threads, handoff_code_in, reply_token
from tests.conftest import Harness, HarnessFactory
from tests.dovecot import Dovecot
from tests.helpers_continuity import record_ingest
from tests.mailservers import EMAIL_ENV, SECRET, SmtpReceiver, customer_mail, email_config
from tests.test_email import thread_of
from tests.test_email_threads import SUPPORT, MemoryState

FIXTURES = Path(__file__).parent / "fixtures" / "email"
CODE = "LINK-7KQ29XWDM4PT"
TOKEN = reply_token(SECRET, "ann@example.org")


def test_the_recorded_handoff_mail_carries_its_code() -> None:
    mail = parse_mail((FIXTURES / "handoff.eml").read_bytes(), SUPPORT)
    # Lower-cased as the recipients are compared; the core normalizes the case.
    assert handoff_code_in(mail.recipients, SUPPORT) == "link-7kq29xwdm4pt"


@pytest.mark.parametrize(("recipients", "code"), [
    ([f"support+{CODE.lower()}@example.com"], "link-7kq29xwdm4pt"),
    (["support@example.com", f"support+{CODE.lower()}@example.com"], "link-7kq29xwdm4pt"),
    ([f"support+{TOKEN}@example.com", "support+link-abc@example.com"], "link-abc"),
    (["support@example.com"], None),
    ([f"support+{TOKEN}@example.com"], None),  # a reply token names a conversation, no one
    (["support+billing@example.com"], None),  # a sub-address of the mailbox
    (["support+link-@example.com"], None),
    ([f"sales+{CODE.lower()}@example.com"], None),  # another mailbox
    ([f"support+{CODE.lower()}@example.org"], None),  # another domain
])
def test_only_a_link_plus_part_of_the_support_address_is_a_code(
    recipients: list[str], code: str | None,
) -> None:
    assert handoff_code_in(recipients, SUPPORT) == code


@pytest.mark.parametrize("header", ["To", "Cc", "Delivered-To", "X-Original-To"])
def test_the_code_counts_in_any_recipient_header(header: str) -> None:
    plus = f"support+{CODE}@example.com"
    raw = customer_mail("ann@example.org", "Hi", "x", message_id="h1@example.org",
                        to=plus if header == "To" else SUPPORT)
    if header != "To":
        raw = f"{header}: {plus}\n".encode() + raw
    mail = parse_mail(raw, SUPPORT)
    assert handoff_code_in(mail.recipients, SUPPORT) == CODE.lower()


async def test_a_code_never_resolves_as_a_reply_token() -> None:
    state = MemoryState()
    state.data[f"tok:{CODE.lower()}"] = "bob@example.org"  # even if such a key existed
    threads = Threads(state, SECRET, SUPPORT)
    mail = parse_mail(customer_mail("ann@example.org", "Hi", "x", message_id="h2@example.org",
                                    to=f"support+{CODE}@example.com"), SUPPORT)
    assert await threads.resolve(mail) == ("ann@example.org", "sender")


# -- through the real bridge, Dovecot and an SMTP server ------------------------------------


@pytest.fixture
async def h(dovecot: Dovecot, smtp: SmtpReceiver, make_harness: HarnessFactory) -> Harness:
    return await make_harness({"connectors.email": email_config(dovecot, smtp)}, env=EMAIL_ENV)


def connector_of(h: Harness) -> EmailConnector:
    connector = h.bridge.connectors["email"]
    assert isinstance(connector, EmailConnector)
    return connector


def test_invite_names_the_support_plus_address(h: Harness) -> None:
    connector = connector_of(h)
    assert connector.channels() == ("email",)
    assert connector.handoff_invite("email", CODE) == (
        f"To continue by email, write to support+{CODE}@example.com from the address you "
        "want us to use.")
    assert connector.handoff_invite("sms", CODE) is None
    assert connector.handoff_invite("email", "LINK 7KQ29XWDM4PT") is None


async def test_handoff_mails_and_token_replies_side_by_side(
    h: Harness, dovecot: Dovecot, smtp: SmtpReceiver, monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen = record_ingest(h, monkeypatch)
    await dovecot.append(customer_mail("Ann <ann@example.org>", "Late order", "Where is it?",
                                       message_id="a1@example.org"))
    thread = await thread_of(h, "ann@example.org")
    assert await h.agent_says(thread, "It ships today") == 200
    [sent] = await smtp.wait_for(1)
    reply_to = sent.message["Reply-To"].addresses[0].addr_spec  # support+<token>@

    # A reply to that token from another address joins Ann's conversation; a mail to the
    # handoff address from Ann's work address names no conversation, only the code.
    await dovecot.append(customer_mail("Bob <bob@example.org>", "Re: Late order", "News?",
                                       message_id="a2@example.org", to=reply_to))
    await dovecot.append(customer_mail(
        "Ann Kim <ann.kim@work.example.net>", "Continuing here", "Hi, it's Ann",
        message_id="a3@work.example.net", to=f"Example Support <support+{CODE}@example.com>"))
    await h.wait_rows("SELECT COUNT(*) FROM messages WHERE direction = 'in'", [(3,)])
    assert [(m.address, m.reopen, m.handoff_code) for m in seen] == [
        ("ann@example.org", False, None),
        ("ann@example.org", True, None),
        ("ann.kim@work.example.net", False, CODE.lower()),
    ]
