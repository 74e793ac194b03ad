"""Automatic answers by email keep RFC 3834's etiquette (issue 21, item 2): they carry
`Auto-Submitted: auto-replied`, and a mail that is itself automatic or from a list never
gets one.  Through a real Dovecot and a real SMTP server."""

from __future__ import annotations

import pytest

from tests.conftest import Harness, HarnessFactory
from tests.dovecot import Dovecot
from tests.mailservers import EMAIL_ENV, SmtpReceiver, customer_mail, email_config

pytestmark = pytest.mark.backends("sqlite")  # the connector's protocol; the SQL runs elsewhere


@pytest.fixture
async def h(dovecot: Dovecot, smtp: SmtpReceiver, make_harness: HarnessFactory) -> Harness:
    return await make_harness({"connectors.email": email_config(dovecot, smtp),
                               "teams.support": {"greeting": True}}, env=EMAIL_ENV)


async def test_an_automatic_answer_is_marked_and_never_answers_an_automatic_mail(
        h: Harness, dovecot: Dovecot, smtp: SmtpReceiver) -> None:
    await dovecot.append(
        customer_mail("Ann Kim <ann@example.org>", "Order 7", "Where is it?",
                      message_id="a1@example.org"),
        customer_mail("Robot <noreply-ish@example.net>", "Out of office", "Away.",
                      message_id="a2@example.net", Auto_Submitted="auto-replied"),
        customer_mail("List <news@example.net>", "Newsletter", "News.",
                      message_id="a3@example.net", Precedence="bulk"),
        customer_mail("Group <group@example.net>", "Digest", "Digest.",
                      message_id="a4@example.net", List_Id="<group.example.net>"),
        customer_mail("Bounce-ish <x@example.net>", "Hello", "Hi.",
                      message_id="a5@example.net", Return_Path="<>"),
    )
    [sent] = await smtp.wait_for(1)
    await h.drained()
    out = sent.message
    assert sent.rcpt_tos == ["ann@example.org"]
    assert out["Auto-Submitted"] == "auto-replied"
    assert out["In-Reply-To"] == "<a1@example.org>"
    body = out.get_body(("plain",))
    assert body is not None and "Hello Ann, thank you for writing." in body.get_content()
    assert h.rows("SELECT origin, state FROM messages WHERE direction = 'out'") == [
        ("auto", "sent")]
    assert len(smtp.received) == 1  # the automatic and list mails got nothing
