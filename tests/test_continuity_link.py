"""An agent joins two customers from Slack (`!link`, the Link button) and undoes it
(`!unlink`), with open conversations on both sides; same names never join by themselves."""

from __future__ import annotations

from bridge.standins.clock import OffsetClock
from bridge.standins.messenger import MessengerStandin
from bridge.standins.twilio import CREATE, TwilioStandin
from tests.conftest import CHANNEL, Harness, HarnessFactory
from tests.dovecot import Dovecot
from tests.helpers_continuity import (
    channels_config,
    click_link,
    command,
    customers_of,
    link_button,
    open_conversations,
    thread_texts,
)
from tests.helpers_twilio import CUSTOMER, customer
from tests.mailservers import EMAIL_ENV, SmtpReceiver, customer_mail, email_config
from tests.test_email import thread_of as email_thread


async def test_same_name_on_two_channels_stays_two_customers(hc: Harness) -> None:
    assert await hc.customer_says(501, "Hi, Ann here", first_name="Ann", last_name="Kim") == 200
    assert await hc.customer_says(502, "Hello!", first_name="Ann", last_name="Kim") == 200
    await customer(hc, "Ann Kim again", address=CUSTOMER)  # SMS, no name at all
    await hc.wait_rows("SELECT COUNT(*) FROM conversations WHERE slack_thread_ts IS NOT NULL",
                       [(3,)])
    assert len(set(customers_of(hc).values())) == 3
    assert hc.count("links") == 0
    assert len(open_conversations(hc)) == 3


async def test_link_merges_open_conversations_in_order_and_unlink_restores_them(
    hc: Harness, twilio: TwilioStandin,
) -> None:
    # Two customers, each with an open conversation: Telegram (the agent's thread) and SMS.
    assert await hc.customer_says(601, "Telegram one", first_name="Ann") == 200
    tg = await hc.thread_of(601)
    sms = await customer(hc, "SMS one", address=CUSTOMER)
    await customer(hc, "SMS two", address=CUSTOMER)
    assert await hc.customer_says(601, "Telegram two", first_name="Ann") == 200
    await hc.wait_rows("SELECT COUNT(*) FROM messages WHERE state = 'posted'", [(4,)])

    await command(hc, tg, "!link +1 415 555 0100")
    await hc.slack.wait_for("chat.postEphemeral", 1)
    button = link_button(hc)
    assert "+14155550100 · 1 conversation, one open" in str(hc.slack.ephemerals[-1]["blocks"])
    assert hc.count("links") == 0  # shown, not done: the agent confirms
    assert await click_link(hc, button) == 200
    await hc.wait_rows("SELECT method, actor FROM links", [("agent", "<@U0AGENT1>")])
    assert await click_link(hc, button) == 200  # a second click changes nothing
    await hc.slack.wait_for("chat.postEphemeral", 2)
    assert "already the same customer" in hc.slack.ephemerals[-1]["text"]
    assert hc.count("links") == 1
    assert len(set(customers_of(hc).values())) == 1
    assert open_conversations(hc) == [tg]
    await hc.drained()
    # The SMS conversation's history joined the Telegram thread, in the order it came...
    [history] = [t for t in thread_texts(hc, tg) if "joined this thread" in t]
    assert history.index("SMS one") < history.index("SMS two")
    # ...and its own thread points there.
    assert any("continues in another thread" in t for t in thread_texts(hc, sms))

    # One customer now: the SMS customer's next message lands in the Telegram thread, and
    # the reply goes back on SMS, where they wrote last.
    assert await customer(hc, "SMS three", address=CUSTOMER) == tg
    await hc.wait_rows("SELECT COUNT(*) FROM messages m JOIN conversations c ON"
                       f" c.id = m.conversation_id WHERE c.slack_thread_ts = '{tg}'", [(3,)])
    await command(hc, tg, "Got all of it")
    [call] = await twilio.wait_for(CREATE, 1)
    assert call.params["To"] == CUSTOMER
    await hc.drained()
    assert any("Sent via SMS" in t for t in thread_texts(hc, tg))
    assert any("Now writing on SMS +14155550100" in t for t in thread_texts(hc, tg))
    assert hc.telegram.sent == []

    # Undo: two customers again, the SMS conversation open in its own thread.
    await command(hc, tg, "!unlink")
    await hc.wait_rows("SELECT undone_by FROM links", [("<@U0AGENT1>",)])
    assert len(set(customers_of(hc).values())) == 2
    assert sorted(open_conversations(hc)) == sorted([tg, sms])
    await customer(hc, "SMS four", address=CUSTOMER)
    await hc.wait_rows("SELECT COUNT(*) FROM messages m JOIN conversations c ON"
                       f" c.id = m.conversation_id WHERE c.slack_thread_ts = '{sms}'", [(3,)])
    await command(hc, tg, "Back to Telegram")
    await hc.wait_rows("SELECT COUNT(*) FROM messages WHERE direction = 'out' AND"
                       " state = 'sent'", [(2,)])
    assert [m["text"] for m in hc.telegram.sent] == ["<b>Dana</b>\nBack to Telegram"]
    assert len(twilio.sent) == 1
    # Nothing lost, nothing twice: 6 customer messages, each once; each reply once.
    assert hc.rows("SELECT COUNT(*), COUNT(DISTINCT platform_message_id) FROM messages"
                   " WHERE direction = 'in'") == [(6, 6)]


async def test_link_finds_nobody_and_says_so(hc: Harness) -> None:
    assert await hc.customer_says(701, "hello", first_name="Ann") == 200
    thread = await hc.thread_of(701)
    await command(hc, thread, "!link Zebulon")
    await hc.slack.wait_for("chat.postEphemeral", 1)
    assert "No other customer matches" in hc.slack.ephemerals[-1]["text"]
    await command(hc, thread, "!unlink")
    await hc.slack.wait_for("chat.postEphemeral", 2)
    assert "No link" in hc.slack.ephemerals[-1]["text"]
    assert hc.count("links") == 0


async def test_via_picks_the_channel_and_refuses_one_the_customer_lacks(
    hc: Harness, twilio: TwilioStandin,
) -> None:
    assert await hc.customer_says(801, "hi on telegram", first_name="Ann") == 200
    tg = await hc.thread_of(801)
    await customer(hc, "hi on sms", address=CUSTOMER)
    await command(hc, tg, "!link +14155550100")
    await hc.slack.wait_for("chat.postEphemeral", 1)
    assert await click_link(hc, link_button(hc)) == 200
    await hc.wait_rows("SELECT COUNT(*) FROM links", [(1,)])

    await command(hc, tg, "!via telegram Answer on Telegram")  # they wrote last on SMS
    await hc.wait_rows("SELECT state FROM messages WHERE direction = 'out'", [("sent",)])
    assert [m["text"] for m in hc.telegram.sent] == ["<b>Dana</b>\nAnswer on Telegram"]
    assert twilio.sent == []
    await command(hc, tg, "!via messenger nope")
    await hc.slack.wait_for("chat.postEphemeral", 2)
    assert "no `messenger` channel" in hc.slack.ephemerals[-1]["text"]
    assert hc.rows("SELECT COUNT(*) FROM messages WHERE direction = 'out'") == [(1,)]
    assert hc.slack.ephemerals[-1]["channel"] == CHANNEL  # told in the support channel...
    assert hc.slack.ephemerals[-1]["thread_ts"] == tg  # ...in this thread


async def test_a_returning_customer_thread_starts_with_what_came_before(
    hc: Harness, clock: OffsetClock,
) -> None:
    assert await hc.customer_says(901, "First problem", first_name="Ann") == 200
    first = await hc.thread_of(901)
    await command(hc, first, "!close")
    await hc.wait_rows("SELECT status FROM conversations", [("closed",)])
    clock.offset += 200 * 3600  # past reopen_within_hours (168)
    assert await hc.customer_says(901, "Second problem", first_name="Ann") == 200
    await hc.wait_rows("SELECT COUNT(*) FROM conversations WHERE slack_thread_ts IS NOT NULL",
                       [(2,)])
    second = str(hc.rows("SELECT slack_thread_ts FROM conversations ORDER BY id")[1][0])
    await hc.drained()
    [context] = [t for t in thread_texts(hc, second) if "Returning customer" in t]
    assert "Telegram" in context and "First problem" in context
    assert "closed by <@U0AGENT1>" in context and f"p{first.replace('.', '')}" in context
    assert not any("Returning customer" in t for t in thread_texts(hc, first))


async def test_link_reads_what_slack_made_of_the_query(
    make_harness: HarnessFactory, twilio: TwilioStandin, meta: MessengerStandin,
    dovecot: Dovecot, smtp: SmtpReceiver,
) -> None:
    """Slack delivers a typed email address as a `<mailto:…|…>` link and `&` as `&amp;`: the
    search is for what the agent typed."""
    h = await make_harness({**channels_config(twilio, meta),
                            "connectors.email": email_config(dovecot, smtp)}, env=EMAIL_ENV)
    await dovecot.append(customer_mail("Ann Kim <ann@example.org>", "Order", "Where is it?",
                                       message_id="q1@example.org"))
    mail = await email_thread(h, "ann@example.org")
    assert await h.customer_says(611, "Hi", first_name="Tom & Jerry") == 200
    tg = await h.thread_of(611)
    assert await h.customer_says(612, "Hello", first_name="Bob") == 200
    bob = await h.thread_of(612)

    await command(h, bob, "!link <mailto:Ann@Example.org|Ann@Example.org>")
    await h.slack.wait_for("chat.postEphemeral", 1)
    assert "ann@example.org" in str(h.slack.ephemerals[-1]["blocks"])
    assert "Ann@Example.org" in link_button(h)["value"]  # the search, as typed
    await command(h, bob, "!link Tom &amp; Jerry")
    await h.slack.wait_for("chat.postEphemeral", 2)
    assert "Tom &amp; Jerry" in str(h.slack.ephemerals[-1]["blocks"])  # escaped for Slack
    assert await click_link(h, link_button(h)) == 200
    await h.wait_rows("SELECT evidence FROM links", [("searched for 'Tom & Jerry'",)])
    assert open_conversations(h) == sorted([mail, bob])
    assert tg != bob
