"""The journey the product exists for: a customer starts on Messenger, moves to WhatsApp
through a handoff link, then answers by email; one thread, and every reply goes out on the
channel they use, once."""

from __future__ import annotations

import re

import pytest

from bridge.standins.clock import OffsetClock
from bridge.standins.messenger import SEND, MessengerStandin
from bridge.standins.twilio import CREATE, TwilioStandin
from tests.conftest import Harness, HarnessFactory
from tests.dovecot import USER, Dovecot
from tests.helpers_continuity import (
    channels_config,
    code_in,
    command,
    customers_of,
    open_conversations,
    thread_texts,
)
from tests.helpers_messenger import ANN, PAGE_A
from tests.helpers_messenger import sender as messenger
from tests.helpers_messenger import thread_of as messenger_thread
from tests.helpers_twilio import WA, customer
from tests.mailservers import EMAIL_ENV, SmtpReceiver, customer_mail, email_config


@pytest.fixture
async def hj(make_harness: HarnessFactory, twilio: TwilioStandin, meta: MessengerStandin,
             dovecot: Dovecot, smtp: SmtpReceiver, clock: OffsetClock) -> Harness:
    config = {**channels_config(twilio, meta),
              "connectors.email": email_config(dovecot, smtp)}
    return await make_harness(config, env=EMAIL_ENV, clock=clock)


async def test_messenger_then_whatsapp_by_handoff_then_email_is_one_thread(
    hj: Harness, meta: MessengerStandin, twilio: TwilioStandin, dovecot: Dovecot,
    smtp: SmtpReceiver, clock: OffsetClock,
) -> None:
    fb = messenger(hj, clock)
    assert await fb.send(PAGE_A, fb.message(PAGE_A, ANN, "My order 77 is late")) == 200
    thread = await messenger_thread(hj, PAGE_A, ANN)

    # Messenger -> WhatsApp: the agent sends a link; the customer opens it and sends the
    # prefilled code.
    await command(hj, thread, "!handoff whatsapp")
    [invite] = await meta.wait_for(SEND, 1)
    assert "wa.me/" in meta.texts()[0]
    await customer(hj, code_in(meta.texts()), address=WA)
    await hj.wait_rows("SELECT COUNT(*) FROM messages WHERE direction = 'in'", [(2,)])
    assert open_conversations(hj) == [thread]
    people = customers_of(hj)
    assert people[WA] == people[f"{PAGE_A}:{ANN}"]

    await command(hj, thread, "Could you email the receipt?")
    [reply] = await twilio.wait_for(CREATE, 1)
    assert reply.params["To"] == WA and "email the receipt" in reply.params["Body"]

    # WhatsApp -> email: an address carrying the code; the customer writes to it.
    await command(hj, thread, "!handoff email")
    await twilio.wait_for(CREATE, 2)
    code = code_in([twilio.sent[-1]["body"]])
    local, domain = USER.split("@")
    assert re.search(rf"{local}\+{code}@{domain}", twilio.sent[-1]["body"], re.IGNORECASE)
    await dovecot.append(customer_mail("Ann Kim <ann@example.org>", "Receipt", "Here it is.",
                                       message_id="r1@example.org",
                                       to=f"{local}+{code}@{domain}"))
    await hj.wait_rows("SELECT COUNT(*) FROM messages WHERE direction = 'in'", [(3,)])
    assert open_conversations(hj) == [thread]
    assert len(set(customers_of(hj).values())) == 1

    await command(hj, thread, "Thanks, the refund is on its way")
    [mail] = await smtp.wait_for(1)
    assert mail.rcpt_tos == ["ann@example.org"]

    # One thread told the story; each message and reply exactly once, on its channel.
    await hj.drained()
    texts = "\n".join(thread_texts(hj, thread))
    assert "continued on WhatsApp" in texts and "continued on Email" in texts
    assert "Sent via WhatsApp" in texts and "Sent via Email" in texts
    assert hj.rows("SELECT method, evidence FROM links ORDER BY id") == [
        ("handoff", "whatsapp"), ("handoff", "email")]
    assert len(meta.texts()) == 1 and len(twilio.sent) == 2 and len(smtp.received) == 1
    assert hj.rows("SELECT COUNT(*), COUNT(DISTINCT platform_message_id) FROM messages"
                   " WHERE direction = 'in'") == [(3, 3)]
    states = [s for (s,) in hj.rows("SELECT state FROM messages WHERE direction = 'out'")]
    assert len(states) == 4 and set(states) <= {"sent", "delivered", "read"}
    assert invite.params["recipient"]["id"] == ANN  # the invitation went to the customer
